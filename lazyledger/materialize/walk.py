"""The compiled slice walk: DESIGN.md's backward closure over a columnar index, in Numba.

The index (:class:`lazyledger.materialize.index.ColumnIndex`) numbers every transaction by its
*row* ``g`` in global order and keeps, for each of a row's accounts, ``prev[g, k]``: the row
before ``g`` that touches the same account (-1: none). The closure is a set of *needs* (account
``a``, state wanted before position ``p``). A need walks ``a``'s chain backwards from its last
touch before ``p`` and stops at the first row below ``a``'s cut (the latest checkpoint of ``a``
at or before ``p``; genesis if none) or already in the slice; every row it adds raises a need for
each of its other accounts at the row's position. Each row is added once, so the walk costs
O(slice x access set x log checkpoints), whatever the chain's length.

Because every need takes its own cut, one account can enter a slice at several cuts: row ``g``
reads account ``a`` from the cut ``cut(a, pos[g])`` (the latest checkpoint at or before it). All
of ``a``'s touches between that cut and ``g`` are in the slice (by induction on position), so the
replay treats each (account, cut) pair as a separate *virtual account* seeded from the cut's
holdings: no re-seeding inside the replay, and results stay exact."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cut_index(ck_id: np.ndarray, ck_pos: np.ndarray, a: int, p: int) -> int:
    """1 + the index of the latest checkpoint of account ``a`` at a position <= ``p`` in the
    (id, position)-sorted checkpoint arrays; 0 if there is none (the cut is genesis)."""
    lo = 0
    hi = ck_id.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ck_id[mid] < a or (ck_id[mid] == a and ck_pos[mid] <= p):
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and ck_id[lo - 1] == a:
        return lo
    return 0


@njit(cache=True)
def last_before(ids: np.ndarray, prev: np.ndarray, g: int, a: int, limit: int) -> int:
    """Follow account ``a``'s chain down from row ``g`` to its first row below ``limit``."""
    k_max = ids.shape[1]
    while g >= limit:
        nxt = -1
        for k in range(k_max):
            if ids[g, k] == a:
                nxt = prev[g, k]
                break
        g = nxt
    return g


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    if n < a.shape[0]:
        return a
    out = np.empty(2 * a.shape[0] + 16, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def closure(
    ids: np.ndarray,
    prev: np.ndarray,
    pos: np.ndarray,
    ck_id: np.ndarray,
    ck_pos: np.ndarray,
    need_a: np.ndarray,
    need_g: np.ndarray,
    need_p: np.ndarray,
    mark: np.ndarray,
) -> np.ndarray:
    """Rows of the slice (sorted) for the initial needs (account, first row to look at, position
    the state is wanted before). ``mark`` is scratch, all zero on entry and on return."""
    k_max = ids.shape[1]
    has_ck = ck_id.shape[0] > 0
    st_a = need_a.astype(np.int64)
    st_g = need_g.astype(np.int64)
    st_p = need_p.astype(np.int64)
    n = st_a.shape[0]
    out = np.empty(64, np.int64)
    m = 0
    while n > 0:
        n -= 1
        a = int(st_a[n])
        g = int(st_g[n])
        c = 0
        if has_ck and g >= 0:
            j = cut_index(ck_id, ck_pos, a, int(st_p[n]))
            if j > 0:
                c = int(ck_pos[j - 1])
        while g >= 0:
            q = pos[g]
            if q < c or mark[g]:
                break
            mark[g] = 1
            out = _grow(out, m)
            out[m] = g
            m += 1
            nxt = -1
            for k in range(k_max):
                b = ids[g, k]
                if b < 0:
                    continue
                if b == a:
                    nxt = prev[g, k]
                    continue
                st_a = _grow(st_a, n)
                st_g = _grow(st_g, n)
                st_p = _grow(st_p, n)
                st_a[n] = b
                st_g[n] = prev[g, k]
                st_p[n] = q
                n += 1
            g = nxt
    found = np.sort(out[:m])
    for j in range(m):
        mark[found[j]] = 0
    return found


@njit(cache=True)
def row_cuts(
    ids: np.ndarray, pos: np.ndarray, rows: np.ndarray, ck_id: np.ndarray, ck_pos: np.ndarray
) -> np.ndarray:
    """For each slice row and account column, the virtual-account key ``id << 31 | cut``
    (``cut`` from :func:`cut_index`); -1 where the column is empty."""
    k_max = ids.shape[1]
    out = np.full((rows.shape[0], k_max), -1, np.int64)
    has_ck = ck_id.shape[0] > 0
    for j in range(rows.shape[0]):
        g = rows[j]
        for k in range(k_max):
            a = ids[g, k]
            if a < 0:
                continue
            c = cut_index(ck_id, ck_pos, a, pos[g]) if has_ck else 0
            out[j, k] = (a << 31) | c
    return out


@njit(cache=True)
def link(ids: np.ndarray, prev: np.ndarray, last: np.ndarray, start: int, stop: int) -> None:
    """Set ``prev`` for rows ``start..stop`` and advance ``last`` (row of each account's latest
    touch; -1: none), in row order."""
    for g in range(start, stop):
        for k in range(ids.shape[1]):
            a = ids[g, k]
            if a < 0:
                prev[g, k] = -1
                continue
            prev[g, k] = last[a]
            last[a] = g
