"""The in-memory columnar index that the compiled slice walk and the replay read.

Every committed transaction is a *row* ``g`` (0, 1, ... in global order) with its packed
position, its replay row (:mod:`lazyledger.materialize.rows`), its accounts' dense ids and, per
account, the previous row touching that account (:func:`lazyledger.materialize.walk.link`).
It is derived data: built once per process from the shards' stored replay rows (sections in
global order; no block is decoded), then extended as blocks are appended, so a query gathers
exactly its slice's rows and never scans the chain. Checkpoints are mirrored here as sorted
(account id, position) arrays with their holdings."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from lazyledger.materialize import walk
from lazyledger.materialize.rows import ROW, ROW_DTYPE

K = 2
"""Account columns per row (a row's access set: acc0, acc1)."""

Holdings = dict[int, int]


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with room for at least ``n`` entries along axis 0 (a copy when it grows)."""
    if n <= len(a):
        return a
    out = np.empty((max(n, 2 * len(a), 1024), *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


class ColumnIndex:
    """Rows in global order with per-account backward links; append-only."""

    def __init__(self) -> None:
        self.n = 0
        self.rows = np.zeros(0, ROW_DTYPE)
        self.links = np.zeros((0, 1 + 2 * K), np.int64)  # see lazyledger.materialize.walk
        self.pos = np.zeros(0, np.int64)  # positions by row, never marked: read without the lock
        self.last = np.full(0, -1, np.int64)
        self.lock = threading.Lock()  # held by a walk (it marks rows in ``links``) and by growth

    def extend(self, sections: Iterable[tuple[int, bytes]]) -> None:
        """Append sections (packed position of their first row, concatenated rows) that follow
        the indexed ones in global order."""
        parts = [(p, data) for p, data in sections if data]
        if not parts:
            return
        counts = [len(data) // ROW.size for _, data in parts]
        new = np.frombuffer(b"".join(data for _, data in parts), ROW_DTYPE)
        start, stop = self.n, self.n + len(new)
        with self.lock:
            rows, links, pos = (
                _grown(self.rows, stop),
                _grown(self.links, stop),
                _grown(self.pos, stop),
            )
            rows[start:stop] = new
            pos[start:stop] = np.concatenate(
                [p + np.arange(c, dtype=np.int64) for (p, _), c in zip(parts, counts, strict=True)]
            )
            links[start:stop, walk.POS] = pos[start:stop]
            id0 = new["id0"].astype(np.int64)
            id1 = new["id1"].astype(np.int64)
            links[start:stop, 1] = id0
            links[start:stop, 2] = np.where(id1 == id0, -1, id1)
            top = int(max(id0.max(), id1.max())) + 1
            last = self.last
            if top > len(last):
                last = np.concatenate([last, np.full(max(top, 2 * len(last)) - len(last), -1)])
            walk.link(links, last, start, stop)
            self.rows, self.links, self.pos, self.last = rows, links, pos, last
            self.n = stop

    def count_before(self, end: int) -> int:
        """Rows at positions below ``end``."""
        return int(np.searchsorted(self.pos[: self.n], end))

    def start(self, account_id: int, limit: int) -> int:
        """The row of ``account_id``'s last touch among rows ``< limit`` (-1: none)."""
        if account_id >= len(self.last):
            return -1
        return int(walk.last_before(self.links, int(self.last[account_id]), account_id, limit))

    def prev(self, g: int) -> list[tuple[int, int]]:
        """(account id, previous row touching it) for each account of row ``g``."""
        ids = self.links[g, 1 : 1 + K].tolist()
        prev = self.links[g, 1 + K :].tolist()
        return [(a, p) for a, p in zip(ids, prev, strict=True) if a >= 0]

    def closure(
        self, needs: list[tuple[int, int, int]], cuts: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Sorted rows of the slice for needs (account id, first row, position), cut at the
        checkpoint arrays ``cuts`` (a :meth:`Checkpoints.arrays` snapshot)."""
        ck_id, ck_pos = cuts
        a = np.array([n[0] for n in needs], np.int64)
        g = np.array([n[1] for n in needs], np.int64)
        p = np.array([n[2] for n in needs], np.int64)
        with self.lock:
            out: np.ndarray = walk.closure(self.links, ck_id, ck_pos, a, g, p)
        return out


class Checkpoints:
    """Stored checkpoints by (account id, position), sorted, with their holdings."""

    def __init__(self) -> None:
        self._id = np.zeros(0, np.int64)
        self._pos = np.zeros(0, np.int64)
        self._pending: dict[tuple[int, int], Holdings] = {}
        self.held: dict[tuple[int, int], Holdings] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.held)

    def add(self, account_id: int, position: int, held: Holdings) -> None:
        with self._lock:
            key = (account_id, position)
            if key not in self.held:
                self._pending[key] = held
            self.held[key] = held

    def discard(self, account_id: int, position: int) -> None:
        """Forget a checkpoint (its stored form was found damaged)."""
        with self._lock:
            self.arrays_locked()
            key = (account_id, position)
            if self.held.pop(key, None) is None:
                return
            keep = ~((self._id == account_id) & (self._pos == position))
            self._id, self._pos = self._id[keep], self._pos[keep]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """A snapshot: (account ids, positions), sorted by (id, position). Later additions
        build new arrays, so a snapshot never changes under its reader."""
        with self._lock:
            return self.arrays_locked()

    def arrays_locked(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending:
            keys = sorted(self._pending)
            self._pending.clear()
            new_id = np.array([k[0] for k in keys], np.int64)
            new_pos = np.array([k[1] for k in keys], np.int64)
            ids = np.concatenate([self._id, new_id])
            pos = np.concatenate([self._pos, new_pos])
            order = np.lexsort((pos, ids))
            self._id, self._pos = ids[order], pos[order]
        return self._id, self._pos


NO_CUTS = (np.zeros(0, np.int64), np.zeros(0, np.int64))
"""Checkpoint arrays that cut nothing (every account enters at genesis)."""
