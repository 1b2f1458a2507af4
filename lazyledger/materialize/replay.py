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
from lazyledger.materialize.rows import id_matrix, width_of
from lazyledger.ops import REGISTRY, Op

HOSTED = REGISTRY.hosted
"""Row operations the kernel leaves to a Python host (they need blobs and model checks)."""
_INFER = int(Op.DNN_INFER)  # a plain int: Numba types an IntEnum argument slowly

Holdings = Mapping[int, int]


def account_ids(rows: np.ndarray) -> dict[bytes, int]:
    """Account -> dense id, for every account the rows name."""
    width = width_of(rows)
    ids = np.concatenate([rows[f"id{j}"] for j in range(width)])
    accounts = np.concatenate([rows[f"acc{j}"] for j in range(width)])
    unique, first = np.unique(ids, return_index=True)
    pairs = zip(unique.tolist(), first.tolist(), strict=True)
    return {bytes(accounts[i]): int(k) for k, i in pairs}


@attrs.define(eq=False)
class Replayed:
    """The outcome of a replay: per-row status, and final balances by slot."""

    rows: np.ndarray
    slot_keys: np.ndarray  # account id << 32 | asset, by slot
    slot_table: np.ndarray | None  # the hash table; None: dense slots, keys sorted
    balances: np.ndarray  # int64 by slot
    status: np.ndarray  # uint8 by row
    _ids: dict[bytes, int] | None = None
    _sorted: tuple[np.ndarray, np.ndarray] | None = None  # slot order, keys in that order

    def id_of(self, account: bytes) -> int | None:
        """The dense id of ``account`` if the rows name it."""
        if self._ids is None:
            self._ids = account_ids(self.rows)
        return self._ids.get(account)

    def slot(self, account_id: int, asset: int) -> int:
        """The slot of (account id, asset), or -1 if there is none."""
        query = np.array([(account_id << 32) | asset], dtype=np.int64)
        return int(self.find(query)[0])

    def find(self, queries: np.ndarray) -> np.ndarray:
        """Slots of keys (id << 32 | asset); -1 where there is none."""
        if self.slot_table is not None:
            return slots.find_slots(self.slot_table, self.slot_keys, queries)
        at = np.searchsorted(self.slot_keys, queries)
        clipped = np.minimum(at, len(self.slot_keys) - 1)
        hit = (at < len(self.slot_keys)) & (self.slot_keys[clipped] == queries)
        return np.where(hit, at, -1)

    def holdings(
        self, account: bytes, initial: Holdings, account_id: int | None = None
    ) -> dict[int, int]:
        """Final non-zero balances of ``account``: its initial ones overlaid with its slots."""
        out = dict(initial)
        k = account_id if account_id is not None else self.id_of(account)
        if k is not None:
            if self._sorted is None:  # dense slots are sorted by key already
                order = (
                    np.arange(len(self.slot_keys))
                    if self.slot_table is None
                    else np.argsort(self.slot_keys, kind="stable")
                )
                self._sorted = (order, self.slot_keys[order])
            order, keys = self._sorted
            lo, hi = np.searchsorted(keys, [k << 32, (k + 1) << 32])
            mine = order[lo:hi]
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
        touched = np.isin(self.slot_keys >> 32, np.fromiter(names, np.int64, len(names)))
        keys, values = self.slot_keys[touched].tolist(), self.balances[touched].tolist()
        for key, value in zip(keys, values, strict=True):
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


def _assign_wide(rows: np.ndarray) -> tuple[Replayed, tuple[np.ndarray, ...]]:
    """:func:`_assign_slots` for rows of width K > 2: slot matrices ``sa``, ``sb`` (rows x K)
    and the integers ``v`` (rows x K), over a hash table of the touched pairs."""
    m, width = len(rows), width_of(rows)
    ids = id_matrix(rows) << 32
    x = rows["asset"].astype(np.int64)[:, None]
    x2 = rows["asset2"].astype(np.int64)[:, None]
    parts = [(ids | x).reshape(-1), (ids | x2).reshape(-1)]
    if (rows["op"] == _INFER).any():
        parts.append(_register_keys(rows))
    slot_of, keys, table = slots.index_slots(np.concatenate(parts))
    sa = slot_of[: m * width].reshape(m, width)
    sb = slot_of[m * width : 2 * m * width].reshape(m, width)
    v = np.empty((m, width), np.int64)
    v[:, 0], v[:, 1] = rows["amount"], rows["min_out"]
    for j in range(2, width):
        v[:, j] = rows[f"v{j}"]
    out = Replayed(rows, keys, table, np.zeros(len(keys), np.int64), np.zeros(m, np.uint8))
    return out, (sa, sb, v)


def _assign_slots(rows: np.ndarray) -> tuple[Replayed, tuple[np.ndarray, ...]]:
    """Slots for the rows' (account, asset) pairs, and each row's four slot arrays: a dense
    ``ids x assets`` array when the rows cover their ids densely (a long replay), else a hash
    table of the touched pairs only (a thin slice)."""
    m = len(rows)
    if width_of(rows) > 2:
        return _assign_wide(rows)
    n_ids, infer = slots.id_span(rows["id0"], rows["id1"], rows["op"], _INFER)
    if m and not infer and n_ids <= 2 * m:
        *columns, assets = slots.dense_row_slots(
            rows["id0"], rows["id1"], rows["asset"], rows["asset2"], n_ids
        )
        a = len(assets)
        if a and n_ids * a <= 16 * m:
            dense = np.arange(n_ids * a, dtype=np.int64)
            keys = ((dense // a) << 32) | assets[dense % a]
            out = Replayed(rows, keys, None, np.zeros(len(dense), np.int64), np.zeros(m, np.uint8))
            return out, tuple(columns)
    id0 = rows["id0"].astype(np.int64) << 32
    id1 = rows["id1"].astype(np.int64) << 32
    x = rows["asset"].astype(np.int64)
    x2 = rows["asset2"].astype(np.int64)
    parts = [id0 | x, id1 | x, id0 | x2, id1 | x2]
    queries = np.concatenate([*parts, _register_keys(rows)] if infer else parts)
    slot_of, keys, table = slots.index_slots(queries)
    out = Replayed(rows, keys, table, np.zeros(len(keys), np.int64), np.zeros(m, np.uint8))
    return out, (slot_of[:m], slot_of[m : 2 * m], slot_of[2 * m : 3 * m], slot_of[3 * m : 4 * m])


def replay_rows(
    rows: np.ndarray,
    initial: Mapping[bytes, Holdings] | InitialArrays,
    host: Host | None = None,
) -> Replayed:
    """Replay ``rows`` (replay rows of any width, in global order) from the ``initial``
    balances of the accounts they touch (accounts missing from ``initial`` start empty). Rows
    the kernel does not apply itself (DNN claims and inferences) go to ``host``, in order."""
    if rows.dtype.names is None or "id0" not in rows.dtype.names:
        raise TypeError("rows must be replay rows (lazyledger.materialize.rows.row_dtype)")
    m = len(rows)
    out, columns = _assign_slots(rows)
    balances, status = out.balances, out.status
    if not isinstance(initial, InitialArrays):
        initial = InitialArrays.of(initial, out.id_of)
    if len(initial.values):
        at = out.find((initial.ids << 32) | initial.assets)
        hit = at >= 0
        balances[at[hit]] = initial.values[hit]
    op = rows["op"]
    if width_of(rows) > 2:
        args = (op, *columns, balances, status)
        replay = kernel.current_wide()
    else:
        args = (op, *columns, rows["amount"], rows["min_out"], balances, status)
        replay = kernel.current()
    view = Slots(out)
    done = replay(*args, 0)
    while done != m:
        if host is None or int(op[done]) not in HOSTED:
            raise UnknownRowOp(f"replay row {done} has unknown operation {int(op[done])}")
        status[done] = host(done, view)
        done = replay(*args, done + 1)
    return out
