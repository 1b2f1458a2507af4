"""Dependency slices: the backward closure of DESIGN.md, cut at stored checkpoints.

Positions are packed integers (see :mod:`lazyledger.shards`); "state of A before p" is the state
after every transaction at a position below p. A need (A, p) takes A's state from its cut (the
latest checkpoint of A at or before p, else genesis) and every transaction touching A in
[cut, p); each of those needs the state of every account it touches just before it. Each need
takes its own cut, so an account may enter a slice at several cuts (multi-cut slices).

The fast path is the Numba walk over the in-memory columnar index
(:mod:`lazyledger.materialize.walk`); :func:`python_closure` is its slow twin over the stored
access-set index, and tests compare the two."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import numpy as np

from lazyledger.materialize import records, slots, walk
from lazyledger.materialize.index import ColumnIndex, Cuts, ranges
from lazyledger.materialize.replay import InitialArrays
from lazyledger.materialize.rows import id_matrix, row_accounts
from lazyledger.model import Genesis
from lazyledger.store import Store

Holdings = dict[int, int]


def stored_rows(
    store: Store, genesis: Genesis, height: int, width: int = 2
) -> list[tuple[int, bytes]]:
    """(packed position, replay row) of every transaction of blocks 1..height, read from the
    shards' stored section records (rows ``width`` accounts wide): the slow twin's input,
    independent of the columnar index."""
    found = records.read(store, 0, height, width)
    names = b"".join(records.genesis_accounts(genesis)) + found.names
    rows = records.replay_rows(found, np.frombuffer(names, "V32"))
    positions = np.repeat(found.positions, found.counts) + (
        np.arange(len(found)) - np.repeat(np.cumsum(found.counts) - found.counts, found.counts)
    )
    return [(p, rows[g].tobytes()) for g, p in enumerate(positions.tolist())]


def python_closure(
    rows: Sequence[tuple[int, bytes]],
    needs: Mapping[bytes, int],
    cut: Callable[[bytes, int], int] | None = None,
) -> list[int]:
    """The slow twin of :func:`lazyledger.materialize.walk.closure`: positions of the slice
    giving each account's state before ``needs[account]``, from ``rows`` (position, replay row)
    in global order (:func:`stored_rows`).

    A need (account, position) takes every touch of the account from its cut (the latest
    checkpoint at or before the position) up to the position, newest first, stopping at a
    transaction already in the slice; each added transaction needs its other accounts' states
    before it. ``cut(account, position)`` gives the position of the latest checkpoint at or
    before ``position`` (0: genesis); None cuts nothing."""
    touches: dict[bytes, list[tuple[int, bytes]]] = {}
    for pos, row in rows:
        for a in set(row_accounts(row)):
            touches.setdefault(a, []).append((pos, row))
    taken: set[int] = set()
    work = [(a, p) for a, p in needs.items()]
    while work:
        a, p = work.pop()
        start = cut(a, p) if cut is not None else 0
        mine = [(q, row) for q, row in touches.get(a, []) if start <= q < p]
        for q, row in reversed(mine):
            if q in taken:
                break
            taken.add(q)
            work += [(b, q) for b in set(row_accounts(row)) - {a}]
    return sorted(taken)


@attrs.frozen(eq=False)
class Slice:
    """The rows to replay (global order), their accounts renumbered as *virtual accounts*: one
    per (account, cut) pair (see :mod:`lazyledger.materialize.walk`). ``keys[v]`` is virtual
    account ``v``'s key ``id << 31 | cut``, where ``cut`` indexes the checkpoint snapshot
    ``cuts`` (1-based; 0 is genesis)."""

    positions: np.ndarray  # int64 packed positions
    rows: np.ndarray  # replay rows; their ids are virtual ids
    keys: np.ndarray  # int64 by virtual id
    table: np.ndarray  # hash table over ``keys`` (lazyledger.materialize.slots)
    cuts: Cuts

    def __len__(self) -> int:
        return len(self.positions)

    def accounts(self) -> int:
        """Distinct accounts the slice touches."""
        return len(np.unique(self.keys >> 31))

    def key_of(self, account_id: int, position: int) -> int:
        """The virtual key of ``account_id`` read before ``position``."""
        return (account_id << 31) | walk.cut_index(
            self.cuts.first, self.cuts.pos, account_id, position
        )

    def vid(self, key: int) -> int | None:
        """The virtual id of ``key``, if the slice's rows read it."""
        found = int(slots.find_slots(self.table, self.keys, np.array([key], np.int64))[0])
        return None if found < 0 else found


def compiled_slice(
    index: ColumnIndex,
    needs: list[tuple[int, int, int]] | tuple[np.ndarray, np.ndarray, np.ndarray],
    cuts: Cuts,
    extra: Sequence[int] = (),
) -> Slice:
    """The slice for needs (account id, first row, position), plus rows ``extra`` (a receipt's
    own transaction), cut at the checkpoint snapshot ``cuts``."""
    sl = bounded_slice(index, needs, cuts, extra)
    assert sl is not None  # (no limit)
    return sl


def bounded_slice(
    index: ColumnIndex,
    needs: list[tuple[int, int, int]] | tuple[np.ndarray, np.ndarray, np.ndarray],
    cuts: Cuts,
    extra: Sequence[int] = (),
    limit: int | None = None,
) -> Slice | None:
    """The slice for needs (account id, first row, position), plus rows ``extra`` (a receipt's
    own transaction), cut at the checkpoint snapshot ``cuts``; None if its walk finds more
    than ``limit`` rows."""
    empty = len(needs) == 0 or len(needs[0]) == 0
    found = np.zeros(0, np.int64) if empty else index.closure(needs, cuts, limit)
    if found is None:
        return None
    g = found
    if len(extra):
        g = np.union1d(g, np.asarray(extra, np.int64))
    raw = index.rows.view(np.uint8).reshape(len(index.rows), index.rows.itemsize)
    rows = np.take(raw, g, axis=0).view(index.rows.dtype).reshape(-1)  # a row gather is a memcpy
    per_row = walk.row_keys(id_matrix(rows), index.pos[g], cuts.first, cuts.pos)
    vids, keys, table = slots.index_slots(per_row.reshape(-1))
    width = per_row.shape[1]
    for j in range(width):
        rows[f"id{j}"] = vids[j::width]
    return Slice(index.pos[g], rows, keys, table, cuts)


def seed(sl: Slice, genesis: InitialArrays, bounds: np.ndarray) -> InitialArrays:
    """Initial balances by virtual id: each virtual account seeded from its cut, the genesis
    arrays (sorted by id; account id ``r``'s entries at ``bounds[r]:bounds[r + 1]``) for cut 0,
    the checkpoint's holdings otherwise."""
    real, cut = sl.keys >> 31, sl.keys & ((1 << 31) - 1)
    at_genesis = np.flatnonzero((cut == 0) & (real < len(bounds) - 1))
    lo, hi = bounds[real[at_genesis]], bounds[real[at_genesis] + 1]
    g_take = ranges(lo, hi)
    at_ck = np.flatnonzero(cut)
    c = cut[at_ck] - 1
    ck_lo, ck_hi = sl.cuts.lo[c], sl.cuts.hi[c]
    c_take = ranges(ck_lo, ck_hi)
    return InitialArrays(
        np.concatenate([np.repeat(at_genesis, hi - lo), np.repeat(at_ck, ck_hi - ck_lo)]),
        np.concatenate([genesis.assets[g_take], sl.cuts.assets[c_take]]),
        np.concatenate([genesis.values[g_take], sl.cuts.values[c_take]]),
    )
