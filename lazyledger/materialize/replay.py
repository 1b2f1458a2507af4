"""Replay a run of rows (the columnar replay form) through the Numba kernel.

Balances live in a flat int64 array of *slots*, one per (account, asset) pair the rows touch;
slot ids are computed with vectorised NumPy, so there is no per-transaction Python here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import numpy as np

from lazyledger.errors import LedgerError
from lazyledger.materialize import kernel
from lazyledger.materialize.rows import ROW_DTYPE
from lazyledger.ops import Op

HOSTED = frozenset({Op.DNN_CLAIM, Op.DNN_INFER})
"""Row operations the kernel leaves to a Python host (they need blobs and model checks)."""

Holdings = Mapping[int, int]


@attrs.frozen
class Replayed:
    """The outcome of a replay: per-row status, and final balances by slot."""

    accounts: np.ndarray  # unique accounts (V32), sorted
    assets: np.ndarray  # unique assets (uint32), sorted
    slot_keys: np.ndarray  # sorted int64 keys: account_index * len(assets) + asset_index
    balances: np.ndarray  # int64 by slot
    status: np.ndarray  # uint8 by row

    def holdings(self, account: bytes, initial: Holdings) -> dict[int, int]:
        """Final non-zero balances of ``account``: its initial ones overlaid with its slots."""
        out = dict(initial)
        k = int(np.searchsorted(self.accounts, np.void(account)))
        if k < len(self.accounts) and bytes(self.accounts[k]) == account:
            n = len(self.assets)
            lo, hi = np.searchsorted(self.slot_keys, [k * n, (k + 1) * n])
            for key, value in zip(
                self.slot_keys[lo:hi].tolist(), self.balances[lo:hi].tolist(), strict=True
            ):
                out[int(self.assets[key % n])] = value
        return {a: v for a, v in sorted(out.items()) if v}

    def all_holdings(self, initial: Mapping[bytes, Holdings]) -> dict[bytes, dict[int, int]]:
        """Final non-zero balances of every account the rows touched."""
        n = len(self.assets)
        merged: dict[bytes, dict[int, int]] = {}
        accounts = [bytes(a) for a in self.accounts]
        assets = self.assets.tolist()
        for key, value in zip(self.slot_keys.tolist(), self.balances.tolist(), strict=True):
            acc = accounts[key // n]
            if acc not in merged:
                merged[acc] = dict(initial.get(acc, {}))
            merged[acc][assets[key % n]] = value
        return {a: {k: v for k, v in sorted(h.items()) if v} for a, h in merged.items()}


class UnknownRowOp(LedgerError):
    """A replay row carries an operation this materialiser cannot apply."""


class Slots:
    """Read and write balances by (account, asset) during a replay, for host-side operations."""

    def __init__(
        self, accounts: np.ndarray, assets: np.ndarray, slot_keys: np.ndarray, balances: np.ndarray
    ) -> None:
        self.accounts, self.assets, self.slot_keys, self.balances = (
            accounts,
            assets,
            slot_keys,
            balances,
        )

    def _slot(self, account: bytes, asset: int) -> int:
        k = int(np.searchsorted(self.accounts, np.void(account)))
        x = int(np.searchsorted(self.assets, asset))
        if k == len(self.accounts) or x == len(self.assets) or int(self.assets[x]) != asset:
            raise KeyError((account, asset))
        key = k * len(self.assets) + x
        s = int(np.searchsorted(self.slot_keys, key))
        if s == len(self.slot_keys) or int(self.slot_keys[s]) != key:
            raise KeyError((account, asset))
        return s

    def get(self, account: bytes, asset: int) -> int:
        return int(self.balances[self._slot(account, asset)])

    def set(self, account: bytes, asset: int, value: int) -> None:
        self.balances[self._slot(account, asset)] = value


Host = Callable[[int, Slots], int]
"""Applies row ``i`` (an operation the kernel leaves to Python) and returns its status."""


def _register_slots(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(account, asset) pairs an inference writes beyond its row's own slots: its sender's
    registers ``asset + 1 .. asset + count - 1``."""
    infer = np.flatnonzero(rows["op"] == Op.DNN_INFER)
    counts = rows["amount"][infer].astype(np.int64)
    accounts = np.repeat(rows["acc0"][infer], counts)
    firsts = np.repeat(rows["asset"][infer].astype(np.int64), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return accounts, (firsts + offsets).astype(np.uint32)


def replay_rows(
    rows: np.ndarray, initial: Mapping[bytes, Holdings], host: Host | None = None
) -> Replayed:
    """Replay ``rows`` (ROW_DTYPE, in global order) from the ``initial`` balances of the
    accounts they touch (accounts missing from ``initial`` start empty). Rows the kernel does
    not apply itself (DNN claims and inferences) go to ``host``, in order."""
    if rows.dtype != ROW_DTYPE:
        raise TypeError("rows must have ROW_DTYPE")
    m = len(rows)
    extra_acc, extra_asset = _register_slots(rows)
    accounts, acc_idx = np.unique(
        np.concatenate([rows["acc0"], rows["acc1"], extra_acc]), return_inverse=True
    )
    assets, asset_idx = np.unique(
        np.concatenate([rows["asset"], rows["asset2"], extra_asset]), return_inverse=True
    )
    n_assets = len(assets)
    acc_idx = acc_idx.astype(np.int64)
    asset_idx = asset_idx.astype(np.int64)
    a0, a1 = acc_idx[:m], acc_idx[m : 2 * m]
    x, x2 = asset_idx[:m], asset_idx[m : 2 * m]
    extra = acc_idx[2 * m :] * n_assets + asset_idx[2 * m :]
    keys = np.concatenate(
        [a0 * n_assets + x, a1 * n_assets + x, a0 * n_assets + x2, a1 * n_assets + x2, extra]
    )
    slot_keys, slot_of = np.unique(keys, return_inverse=True)
    slot_of = slot_of.astype(np.int64)
    balances = np.zeros(len(slot_keys), dtype=np.int64)
    _load_initial(accounts, assets, slot_keys, balances, initial)
    status = np.zeros(m, dtype=np.uint8)
    op = np.ascontiguousarray(rows["op"])
    args = (
        op,
        slot_of[:m],
        slot_of[m : 2 * m],
        slot_of[2 * m : 3 * m],
        slot_of[3 * m : 4 * m],
        np.ascontiguousarray(rows["amount"]),
        np.ascontiguousarray(rows["min_out"]),
        balances,
        status,
    )
    slots = Slots(accounts, assets, slot_keys, balances)
    done = kernel.replay(*args, 0)
    while done != m:
        if host is None or int(op[done]) not in HOSTED:
            raise UnknownRowOp(f"replay row {done} has unknown operation {int(op[done])}")
        status[done] = host(done, slots)
        done = kernel.replay(*args, done + 1)
    return Replayed(accounts, assets, slot_keys, balances, status)


def _load_initial(
    accounts: np.ndarray,
    assets: np.ndarray,
    slot_keys: np.ndarray,
    balances: np.ndarray,
    initial: Mapping[bytes, Holdings],
) -> None:
    n_assets = len(assets)
    asset_pos = {int(a): i for i, a in enumerate(assets.tolist())}
    keys: list[int] = []
    values: list[int] = []
    if len(initial) < len(accounts):
        found = np.searchsorted(accounts, np.array([np.void(a) for a in initial], dtype="V32"))
        pairs = zip(initial.items(), found.tolist(), strict=True)
        for (account, held), k in pairs:
            if k < len(accounts) and bytes(accounts[k]) == account:
                for asset, v in held.items():
                    if asset in asset_pos and v:
                        keys.append(k * n_assets + asset_pos[asset])
                        values.append(v)
    else:
        for k, acc in enumerate(accounts):
            for asset, v in initial.get(bytes(acc), {}).items():
                if asset in asset_pos and v:
                    keys.append(k * n_assets + asset_pos[asset])
                    values.append(v)
    if keys:
        karr = np.array(keys, dtype=np.int64)
        at = np.searchsorted(slot_keys, karr)
        ok = (at < len(slot_keys)) & (slot_keys[np.minimum(at, len(slot_keys) - 1)] == karr)
        balances[at[ok]] = np.array(values, dtype=np.int64)[ok]
