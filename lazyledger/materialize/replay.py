"""Replay a run of rows (the columnar replay form) through the Numba kernel.

Balances live in a flat int64 array of *slots*, one per (account, asset) pair the rows touch;
slots are assigned by Numba hash tables (:mod:`lazyledger.materialize.slots`) in time linear in
the rows, so there is no per-transaction Python here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import numpy as np

from lazyledger.errors import LedgerError
from lazyledger.materialize import kernel, slots
from lazyledger.materialize.rows import ROW_DTYPE
from lazyledger.ops import Op

HOSTED = frozenset({Op.DNN_CLAIM, Op.DNN_INFER})
"""Row operations the kernel leaves to a Python host (they need blobs and model checks)."""

Holdings = Mapping[int, int]


@attrs.frozen(eq=False)
class Replayed:
    """The outcome of a replay: per-row status, and final balances by slot."""

    accounts: np.ndarray  # unique accounts touched, as rows of 4 uint64 words
    account_table: np.ndarray
    slot_keys: np.ndarray  # account index << 32 | asset, by slot
    slot_table: np.ndarray
    balances: np.ndarray  # int64 by slot
    status: np.ndarray  # uint8 by row

    def _account(self, account: bytes) -> int:
        w = np.frombuffer(account, dtype=np.uint64)
        return int(slots.find_account(self.account_table, self.accounts, w))

    def slot(self, account: bytes, asset: int) -> int:
        """The slot of (account, asset), or -1 if the rows never touched it."""
        k = self._account(account)
        if k < 0:
            return -1
        query = np.array([(k << 32) | asset], dtype=np.int64)
        return int(slots.find_slots(self.slot_table, self.slot_keys, query)[0])

    def holdings(self, account: bytes, initial: Holdings) -> dict[int, int]:
        """Final non-zero balances of ``account``: its initial ones overlaid with its slots."""
        out = dict(initial)
        k = self._account(account)
        if k >= 0:
            mine = np.flatnonzero((self.slot_keys >> 32) == k)
            for key, value in zip(
                self.slot_keys[mine].tolist(), self.balances[mine].tolist(), strict=True
            ):
                out[key & 0xFFFFFFFF] = value
        return {a: v for a, v in sorted(out.items()) if v}

    def all_holdings(self, initial: Mapping[bytes, Holdings]) -> dict[bytes, dict[int, int]]:
        """Final non-zero balances of every account the rows touched."""
        names = [bytes(a) for a in self.accounts.view("V32").ravel()]
        merged: dict[bytes, dict[int, int]] = {}
        for key, value in zip(self.slot_keys.tolist(), self.balances.tolist(), strict=True):
            acc = names[key >> 32]
            if acc not in merged:
                merged[acc] = dict(initial.get(acc, {}))
            merged[acc][key & 0xFFFFFFFF] = value
        return {a: {k: v for k, v in sorted(h.items()) if v} for a, h in merged.items()}


class UnknownRowOp(LedgerError):
    """A replay row carries an operation this materialiser cannot apply."""


class Slots:
    """Read and write balances by (account, asset) during a replay, for host-side operations."""

    def __init__(self, replayed: Replayed) -> None:
        self.replayed = replayed

    def _slot(self, account: bytes, asset: int) -> int:
        s = self.replayed.slot(account, asset)
        if s < 0:
            raise KeyError((account, asset))
        return s

    def get(self, account: bytes, asset: int) -> int:
        return int(self.replayed.balances[self._slot(account, asset)])

    def set(self, account: bytes, asset: int, value: int) -> None:
        self.replayed.balances[self._slot(account, asset)] = value


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
    rows: np.ndarray,
    initial: Mapping[bytes, Holdings] | InitialArrays,
    host: Host | None = None,
) -> Replayed:
    """Replay ``rows`` (ROW_DTYPE, in global order) from the ``initial`` balances of the
    accounts they touch (accounts missing from ``initial`` start empty). Rows the kernel does
    not apply itself (DNN claims and inferences) go to ``host``, in order."""
    if rows.dtype != ROW_DTYPE:
        raise TypeError("rows must have ROW_DTYPE")
    m = len(rows)
    extra_acc, extra_asset = _register_slots(rows)
    words = slots.words_of(np.concatenate([rows["acc0"], rows["acc1"], extra_acc]))
    acc_idx, accounts, account_table = slots.index_accounts(words)
    a0, a1 = acc_idx[:m], acc_idx[m : 2 * m]
    x, x2 = rows["asset"], rows["asset2"]
    slot_of, slot_keys, slot_table = slots.index_slots(
        np.concatenate([a0, a1, a0, a1, acc_idx[2 * m :]]),
        np.concatenate([x, x, x2, x2, extra_asset]),
    )
    balances = np.zeros(len(slot_keys), dtype=np.int64)
    status = np.zeros(m, dtype=np.uint8)
    out = Replayed(accounts, account_table, slot_keys, slot_table, balances, status)
    _load_initial(out, initial)
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
    view = Slots(out)
    done = kernel.replay(*args, 0)
    while done != m:
        if host is None or int(op[done]) not in HOSTED:
            raise UnknownRowOp(f"replay row {done} has unknown operation {int(op[done])}")
        status[done] = host(done, view)
        done = kernel.replay(*args, done + 1)
    return out


@attrs.frozen(eq=False)
class InitialArrays:
    """Initial balances as flat arrays (one entry per non-zero (account, asset) pair), so a
    large initial state (a genesis) is loaded without a Python loop per replay."""

    words: np.ndarray  # (n, 4) uint64: the account of each entry
    assets: np.ndarray  # uint32
    values: np.ndarray  # int64

    @classmethod
    def of(cls, initial: Mapping[bytes, Holdings]) -> InitialArrays:
        entries = [(a, x, v) for a, held in initial.items() for x, v in held.items() if v]
        words = np.frombuffer(b"".join(a for a, _, _ in entries), dtype=np.uint64).reshape(-1, 4)
        return cls(
            words,
            np.array([x for _, x, _ in entries], dtype=np.uint32),
            np.array([v for _, _, v in entries], dtype=np.int64),
        )


def _load_initial(out: Replayed, initial: Mapping[bytes, Holdings] | InitialArrays) -> None:
    """Write the initial balances of touched (account, asset) pairs into their slots."""
    if not isinstance(initial, InitialArrays):
        if not initial:
            return
        initial = InitialArrays.of(initial)
    if not len(initial.values):
        return
    found = slots.find_accounts(out.account_table, out.accounts, initial.words)
    hit = found >= 0
    keys = (found[hit] << 32) | initial.assets[hit].astype(np.int64)
    at = slots.find_slots(out.slot_table, out.slot_keys, keys)
    ok = at >= 0
    out.balances[at[ok]] = initial.values[hit][ok]
