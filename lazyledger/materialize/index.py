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

import attrs
import numpy as np
from numba import njit

from lazyledger.errors import StorageError
from lazyledger.materialize import walk
from lazyledger.materialize.rows import id_matrix, row_dtype

SCAN_MIN_ROWS = 2048
SCAN_RATIO = 8
"""A closure walks at most ``max(SCAN_MIN_ROWS, rows below its needs // SCAN_RATIO)`` rows;
a larger slice is found by one backward pass over those rows (:func:`walk.scan`), which reads
each in order instead of one scattered record per slice row."""


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with room for at least ``n`` entries along axis 0 (a copy when it grows)."""
    if n <= len(a):
        return a
    out = np.empty((max(n, 2 * len(a), 1024), *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


class ColumnIndex:
    """Rows in global order with per-account backward links; append-only. ``width``: account
    columns per row (the chain's row width, 2 unless it runs wider embedder ops)."""

    def __init__(self, width: int = 2) -> None:
        self.n = 0
        self.rows = np.zeros(0, row_dtype(width))
        self.links = np.zeros((0, 1 + width), np.int64)  # see lazyledger.materialize.walk
        self.pos = np.zeros(0, np.int64)  # positions by row (links[:, 0] too)
        self.last = np.full(0, -1, np.int64)
        self.lock = threading.Lock()  # serialises growth; walks only read
        self.scan_min_rows, self.scan_ratio = SCAN_MIN_ROWS, SCAN_RATIO

    def extend(self, sections: Iterable[tuple[int, bytes]]) -> None:
        """Append sections (packed position of their first row, concatenated rows) that follow
        the indexed ones in global order."""
        parts = [(p, data) for p, data in sections if data]
        if not parts:
            return
        kind = self.rows.dtype
        counts = np.array([len(data) // kind.itemsize for _, data in parts], np.int64)
        new = np.frombuffer(b"".join(data for _, data in parts), kind)
        self.extend_rows(np.array([p for p, _ in parts], np.int64), counts, new)

    def extend_rows(self, firsts: np.ndarray, counts: np.ndarray, new: np.ndarray) -> None:
        """Append rows ``new`` (of the index's row dtype) of sections whose first rows sit at
        packed positions ``firsts`` and hold ``counts`` rows each, following the indexed ones in
        global order."""
        if not len(new):
            return
        start, stop = self.n, self.n + len(new)
        if stop >= 1 << 32:  # row numbers are 32-bit in the link words
            raise StorageError("the in-memory index holds at most 2**32 - 1 transactions")
        with self.lock:
            rows, links, pos = (
                _grown(self.rows, stop),
                _grown(self.links, stop),
                _grown(self.pos, stop),
            )
            rows[start:stop] = new
            offsets = np.cumsum(counts) - counts
            pos[start:stop] = np.repeat(firsts - offsets, counts) + np.arange(len(new))
            links[start:stop, walk.POS] = pos[start:stop]
            ids = id_matrix(new)
            top = int(ids.max()) + 1
            for j in range(1, ids.shape[1]):  # an account a row names twice links once
                ids[:, j][(ids[:, j : j + 1] == ids[:, :j]).any(axis=1)] = -1
            last = self.last
            if top > len(last):
                last = np.concatenate([last, np.full(max(top, 2 * len(last)) - len(last), -1)])
            walk.link(links, ids, last, start, stop)
            self.rows, self.links, self.pos, self.last = rows, links, pos, last
            self.n = stop

    def count_before(self, end: int) -> int:
        """Rows at positions below ``end``."""
        if self.n and end > self.pos[self.n - 1]:  # (the common case: a query at the head)
            return self.n
        return int(np.searchsorted(self.pos[: self.n], end))

    def start(self, account_id: int, limit: int) -> int:
        """The row of ``account_id``'s last touch among rows ``< limit`` (-1: none)."""
        if account_id >= len(self.last):
            return -1
        return int(walk.last_before(self.links, int(self.last[account_id]), account_id, limit))

    def needs(self, ids: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Walk needs (account, first row, position) for the states of ``ids`` before ``end``."""
        first: np.ndarray = walk.starts(self.links, self.last, ids, self.count_before(end))
        return ids, first, np.full(len(ids), end, np.int64)

    def prev(self, g: int) -> list[tuple[int, int]]:
        """(account id, previous row touching it) for each account of row ``g``."""
        words = self.links[g, 1:].tolist()
        return [((w >> 32) - 1, (w & 0xFFFFFFFF) - 1) for w in words if w]

    def ids(self, lo: int, hi: int) -> np.ndarray:
        """The account ids of rows ``lo..hi``, row by row (-1: empty column)."""
        out: np.ndarray = (self.links[lo:hi, 1:] >> 32) - 1
        return out

    def closure(
        self,
        needs: list[tuple[int, int, int]] | tuple[np.ndarray, np.ndarray, np.ndarray],
        cuts: Cuts,
        limit: int | None = None,
    ) -> np.ndarray | None:
        """Sorted rows of the slice for needs (account id, first row, position), as tuples or
        as three arrays, cut at the checkpoint snapshot ``cuts``; None if it has more than
        ``limit`` rows."""
        ck_first, ck_pos = cuts.first, cuts.pos
        if isinstance(needs, tuple):
            a, g, p = needs
        else:
            a = np.array([n[0] for n in needs], np.int64)
            g = np.array([n[1] for n in needs], np.int64)
            p = np.array([n[2] for n in needs], np.int64)
        cap = -1 if limit is None else limit
        below = int(g.max(initial=-1)) + 1
        switch = max(self.scan_min_rows, below // self.scan_ratio)
        if 0 <= cap <= switch:
            out: np.ndarray = walk.closure(self.links, ck_first, ck_pos, a, g, p, cap)
        else:  # walk a thin slice; past ``switch`` rows, one pass over the rows is cheaper
            out = walk.closure(self.links, ck_first, ck_pos, a, g, p, switch)
            if len(out) and out[0] < 0:
                out = walk.scan(self.links, ck_first, ck_pos, a, g, p, len(self.last), cap)
        return None if len(out) and out[0] < 0 else out


@attrs.frozen(eq=False)
class Cuts:
    """A snapshot of the checkpoints: (account id, position) sorted, each with the range
    ``lo:hi`` of its holdings in ``assets``/``values``. Later additions build new arrays, so
    a snapshot never changes under its reader."""

    ids: np.ndarray
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    assets: np.ndarray
    values: np.ndarray
    first: np.ndarray = attrs.field()
    """``first[a]:first[a + 1]`` are account ``a``'s entries (ids past the end have none)."""

    @first.default
    def _first(self) -> np.ndarray:
        counts = np.bincount(self.ids, minlength=1) if len(self.ids) else np.zeros(0, np.int64)
        out: np.ndarray = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return out

    def __len__(self) -> int:
        return len(self.ids)

    def holdings(self, index: int) -> dict[int, int]:
        """Non-zero holdings of the checkpoint at 1-based ``index`` (as
        :func:`walk.cut_index` gives), assets ascending as stored."""
        lo, hi = self.lo.item(index - 1), self.hi.item(index - 1)
        if hi - lo == 1:  # (most accounts hold one asset)
            value = self.values.item(lo)
            return {self.assets.item(lo): value} if value else {}
        assets, values = self.assets[lo:hi].tolist(), self.values[lo:hi].tolist()
        return {a: v for a, v in zip(assets, values, strict=True) if v}

    def keys(self, ids: np.ndarray, position: int) -> np.ndarray:
        """Virtual keys ``id << 31 | cut`` of ``ids`` read before ``position``."""
        found: np.ndarray = walk.cut_indices(self.first, self.pos, ids, position)
        out: np.ndarray = (ids << 31) | found
        return out

    def has(self, ids: np.ndarray, position: int) -> np.ndarray:
        """Whether each of ``ids`` has a checkpoint at exactly ``position``."""
        at: np.ndarray = walk.cut_indices(self.first, self.pos, ids, position)
        found: np.ndarray = at > 0
        found[found] = self.pos[at[found] - 1] == position
        return found


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The indices ``lo[0]:hi[0]``, ``lo[1]:hi[1]``, ... concatenated."""
    counts = hi - lo
    return np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))


_E = np.zeros(0, np.int64)
NO_CUTS = Cuts(_E, _E, _E, _E, _E, _E)
"""Checkpoints that cut nothing (every account enters at genesis)."""

Batch = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(position, account ids, holdings per account, assets, values): checkpoints taken at one
position, holdings listed account by account (assets ascending, non-zero values)."""


class Checkpoints:
    """Stored checkpoints by (account id, position), with their holdings in flat arrays.
    Batches are mirrored as they come and merged into the sorted arrays when a reader asks."""

    def __init__(self) -> None:
        self._cuts = NO_CUTS
        self._assets = np.zeros(1024, np.int64)
        self._values = np.zeros(1024, np.int64)
        self._used = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._snapshot: Cuts | None = NO_CUTS
        self._positions: set[int] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.arrays())

    def at_position(self, position: int) -> bool:
        """Whether any checkpoint sits at ``position`` (no merge needed to answer)."""
        return position in self._positions

    def add(
        self,
        position: int,
        ids: np.ndarray,
        counts: np.ndarray,
        assets: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Mirror a batch of checkpoints taken at ``position`` (see :data:`Batch`)."""
        with self._lock:
            m = len(assets)
            start = self._used
            self._assets = _grown(self._assets, start + m)
            self._values = _grown(self._values, start + m)
            self._assets[start : start + m] = assets
            self._values[start : start + m] = values
            self._used += m
            hi = start + np.cumsum(counts)
            lo = hi - counts
            pos = np.full(len(ids), position, np.int64)
            self._pending.append((ids.astype(np.int64), pos, lo, hi))
            self._positions.add(position)
            self._snapshot = None

    def arrays(self) -> Cuts:
        """The current snapshot."""
        with self._lock:
            if self._snapshot is not None:
                return self._snapshot
            old, pending = self._cuts, self._pending
            self._pending = []
            ids, pos = pending[0][0], pending[0][1]
            if (
                len(pending) == 1
                and len(ids)
                and (not len(old) or old.pos.max() <= pos[0])
                and np.all(ids[1:] > ids[:-1])
            ):  # one batch at the newest position: insert after each id's entries
                at = np.searchsorted(old.ids, ids, "right")
                merged = [
                    np.insert(a, at, b)
                    for a, b in zip((old.ids, old.pos, old.lo, old.hi), pending[0], strict=True)
                ]
            else:  # several batches (a policy ran): one sort
                pending.sort(key=lambda b: int(b[1][0]) if len(b[1]) else -1)  # (stable)
                parts = [(old.ids, old.pos, old.lo, old.hi), *pending]
                ids, pos, lo, hi = (np.concatenate(c) for c in zip(*parts, strict=True))
                merged = _sorted_by_account_then_position(ids, pos, lo, hi, len(old))
            ids, pos, lo, hi = merged
            self._cuts = Cuts(ids, pos, lo, hi, _E, _E)
            self._snapshot = Cuts(ids, pos, lo, hi, self._assets, self._values, self._cuts.first)
            return self._snapshot


def _sorted_by_account_then_position(
    ids: np.ndarray, pos: np.ndarray, lo: np.ndarray, hi: np.ndarray, sorted_head: int
) -> list[np.ndarray]:
    """Checkpoint columns sorted by (account id, position), stable. The first ``sorted_head``
    entries are sorted already and the rest come in position order: when none of the rest
    sits below the head's newest position, a stable counting sort by account id gives that
    order in O(n + ids) (a policy's batches after earlier ones); else a lexsort."""
    top = int(ids.max(initial=-1)) + 1
    rest = pos[sorted_head:]
    if (
        top <= 4 * len(ids) + 1024
        and (not sorted_head or not len(rest) or rest.min() >= pos[:sorted_head].max())
        and bool(np.all(rest[1:] >= rest[:-1]))
    ):
        return list(_counting_sort(ids, top, pos, lo, hi))
    order = np.lexsort((pos, ids))
    return [ids[order], pos[order], lo[order], hi[order]]


@njit(cache=True)
def _counting_sort(
    ids: np.ndarray, top: int, pos: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``ids`` (all in ``0..top-1``) and the columns beside them in a stable sort's order by
    id, by counting: one pass to count, one to place."""
    start = np.zeros(top + 1, np.int64)
    for i in range(ids.shape[0]):
        start[ids[i] + 1] += 1
    for k in range(top):
        start[k + 1] += start[k]
    n = ids.shape[0]
    out = (
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
    )
    for i in range(n):
        a = ids[i]
        j = start[a]
        start[a] = j + 1
        out[0][j], out[1][j], out[2][j], out[3][j] = a, pos[i], lo[i], hi[i]
    return out


@njit(cache=True)
def _chain_senders(
    senders: np.ndarray, prev: np.ndarray, count: np.ndarray, last: np.ndarray, start: int
) -> None:
    """Link rows ``start..`` to their sender's previous row and count each sender's rows."""
    for j in range(senders.shape[0]):
        g = start + j
        s = senders[j]
        before = last[s]
        prev[g] = before
        count[g] = (count[before] if before >= 0 else 0) + 1
        last[s] = g


@njit(cache=True)
def _sent_before(pos: np.ndarray, prev: np.ndarray, count: np.ndarray, g: int, end: int) -> int:
    while g >= 0 and pos[g] >= end:
        g = prev[g]
    return count[g] if g >= 0 else 0


@njit(cache=True)
def _sent_before_each(
    pos: np.ndarray,
    prev: np.ndarray,
    count: np.ndarray,
    last: np.ndarray,
    ids: np.ndarray,
    end: int,
) -> np.ndarray:
    out = np.zeros(ids.shape[0], np.int64)
    for j in range(ids.shape[0]):
        a = ids[j]
        if a < last.shape[0]:
            out[j] = _sent_before(pos, prev, count, last[a], end)
    return out


class Senders:
    """Each row's sender, chained per sender with a running count: an account's nonce before a
    position, counted from the stored sections instead of a stored per-account table."""

    def __init__(self) -> None:
        self.n = 0
        self.pos = np.zeros(0, np.int64)
        self.prev = np.zeros(0, np.int64)
        self.count = np.zeros(0, np.int64)
        self.last = np.full(0, -1, np.int64)
        self.lock = threading.Lock()

    def extend(self, senders: np.ndarray, positions: np.ndarray) -> None:
        """Append the senders (dense ids) of the next rows and their packed positions, in
        global order."""
        if not len(senders):
            return
        senders = senders.astype(np.int64)
        with self.lock:
            start, stop = self.n, self.n + len(senders)
            prev, count = _grown(self.prev, stop), _grown(self.count, stop)
            pos = _grown(self.pos, stop)
            pos[start:stop] = positions
            top = int(senders.max()) + 1
            last = self.last
            if top > len(last):
                last = np.concatenate([last, np.full(max(top, 2 * len(last)) - len(last), -1)])
            _chain_senders(senders, prev, count, last, start)
            self.pos, self.prev, self.count, self.last = pos, prev, count, last
            self.n = stop

    def sent_before(self, account_id: int, end: int) -> int:
        """Transactions ``account_id`` sent at positions below ``end``. Walks back from its
        latest send: O(1) at the head, O(sends after ``end``) for an older position."""
        with self.lock:
            if account_id >= len(self.last):
                return 0
            g = self.last.item(account_id)
            return int(_sent_before(self.pos, self.prev, self.count, g, end))

    def sent_before_each(self, ids: np.ndarray, end: int) -> np.ndarray:
        """:meth:`sent_before` of each of ``ids`` (int64 dense ids)."""
        with self.lock:
            out: np.ndarray = _sent_before_each(
                self.pos, self.prev, self.count, self.last, ids, end
            )
            return out
