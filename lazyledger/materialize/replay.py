"""Replay a run of rows (the columnar replay form) through the Numba kernel.

Balances live in a flat int64 array of *slots*, one per (account, asset) pair the rows touch.
Rows carry dense account ids (assigned at ingestion), so a slot key is ``id << 32 | asset`` and
slots are assigned by a Numba hash table (:mod:`lazyledger.materialize.slots`) in time linear
in the rows: there is no per-transaction Python here."""

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


def account_ids(rows: np.ndarray) -> dict[bytes, int]:
    """Account -> dense id, for every account the rows name."""
    ids = np.concatenate([rows["id0"], rows["id1"]])
    accounts = np.concatenate([rows["acc0"], rows["acc1"]])
    unique, first = np.unique(ids, return_index=True)
    pairs = zip(unique.tolist(), first.tolist(), strict=True)
    return {bytes(accounts[i]): int(k) for k, i in pairs}


@attrs.define(eq=False)
class Replayed:
    """The outcome of a replay: per-row status, and final balances by slot."""

    rows: np.ndarray
    slot_keys: np.ndarray  # account id << 32 | asset, by slot
    slot_table: np.ndarray
    balances: np.ndarray  # int64 by slot
    status: np.ndarray  # uint8 by row
    _ids: dict[bytes, int] | None = None

    def id_of(self, account: bytes) -> int | None:
        """The dense id of ``account`` if the rows name it."""
        if self._ids is None:
            self._ids = account_ids(self.rows)
        return self._ids.get(account)

    def slot(self, account_id: int, asset: int) -> int:
        """The slot of (account id, asset), or -1 if the rows never touched it."""
        query = np.array([(account_id << 32) | asset], dtype=np.int64)
        return int(slots.find_slots(self.slot_table, self.slot_keys, query)[0])

    def holdings(
        self, account: bytes, initial: Holdings, account_id: int | None = None
    ) -> dict[int, int]:
        """Final non-zero balances of ``account``: its initial ones overlaid with its slots."""
        out = dict(initial)
        k = account_id if account_id is not None else self.id_of(account)
        if k is not None:
            mine = np.flatnonzero((self.slot_keys >> 32) == k)
            for key, value in zip(
                self.slot_keys[mine].tolist(), self.balances[mine].tolist(), strict=True
            ):
                out[key & 0xFFFFFFFF] = value
        return {a: v for a, v in sorted(out.items()) if v}

    def all_holdings(self, initial: Mapping[bytes, Holdings]) -> dict[bytes, dict[int, int]]:
        """Final non-zero balances of every account the rows touched."""
        if self._ids is None:
            self._ids = account_ids(self.rows)
        names = {k: a for a, k in self._ids.items()}
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
    """Read and write balances by (account id, asset) during a replay, for host operations."""

    def __init__(self, replayed: Replayed) -> None:
        self.replayed = replayed

    def _slot(self, account_id: int, asset: int) -> int:
        s = self.replayed.slot(account_id, asset)
        if s < 0:
            raise KeyError((account_id, asset))
        return s

    def get(self, account_id: int, asset: int) -> int:
        return int(self.replayed.balances[self._slot(account_id, asset)])

    def set(self, account_id: int, asset: int, value: int) -> None:
        self.replayed.balances[self._slot(account_id, asset)] = value


Host = Callable[[int, Slots], int]
"""Applies row ``i`` (an operation the kernel leaves to Python) and returns its status."""


def _register_keys(rows: np.ndarray) -> np.ndarray:
    """Slot keys an inference writes beyond its row's own slots: its sender's registers
    ``asset + 1 .. asset + count - 1``."""
    infer = np.flatnonzero(rows["op"] == Op.DNN_INFER)
    counts = rows["amount"][infer].astype(np.int64)
    ids = np.repeat(rows["id0"][infer].astype(np.int64), counts)
    firsts = np.repeat(rows["asset"][infer].astype(np.int64), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return (ids << 32) | (firsts + offsets)


@attrs.frozen(eq=False)
class InitialArrays:
    """Initial balances as flat arrays (one entry per non-zero (account, asset) pair), so a
    large initial state (a genesis) is loaded without a Python loop per replay."""

    ids: np.ndarray  # int64 dense account ids
    assets: np.ndarray  # int64
    values: np.ndarray  # int64

    @classmethod
    def of(
        cls, initial: Mapping[bytes, Holdings], id_of: Callable[[bytes], int | None]
    ) -> InitialArrays:
        """From holdings by account; accounts ``id_of`` does not know are left out (no row
        touches them, so their balances are not replayed)."""
        entries = []
        for account, held in initial.items():
            k = id_of(account)
            if k is not None:
                entries += [(k, x, v) for x, v in held.items() if v]
        return cls(
            np.array([k for k, _, _ in entries], dtype=np.int64),
            np.array([x for _, x, _ in entries], dtype=np.int64),
            np.array([v for _, _, v in entries], dtype=np.int64),
        )


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
    id0 = rows["id0"].astype(np.int64) << 32
    id1 = rows["id1"].astype(np.int64) << 32
    x = rows["asset"].astype(np.int64)
    x2 = rows["asset2"].astype(np.int64)
    keys = np.concatenate([id0 | x, id1 | x, id0 | x2, id1 | x2, _register_keys(rows)])
    slot_of, slot_keys, slot_table = slots.index_slots(keys)
    balances = np.zeros(len(slot_keys), dtype=np.int64)
    status = np.zeros(m, dtype=np.uint8)
    out = Replayed(rows, slot_keys, slot_table, balances, status)
    if not isinstance(initial, InitialArrays):
        initial = InitialArrays.of(initial, out.id_of)
    if len(initial.values):
        at = slots.find_slots(slot_table, slot_keys, (initial.ids << 32) | initial.assets)
        hit = at >= 0
        balances[at[hit]] = initial.values[hit]
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
