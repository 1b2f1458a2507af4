"""The compiled slice walk: DESIGN.md's backward closure over a columnar index, in Numba.

The index (:class:`lazyledger.materialize.index.ColumnIndex`) numbers every transaction by its
*row* ``g`` in global order and keeps one record per row, ``links[g]`` = (position,
account_0, ..., account_{K-1}): each account word packs ``(id + 1) << 32 | (prev + 1)``, the
account's dense id and the previous row touching it (0 in either half: none). A record of 8 +
8K bytes (24 for K = 2) is what a walk over scattered rows pays for, one cache line; which rows
are already in the slice is kept apart, in a bitmap small enough to stay in cache.

The closure is a set of *needs* (account ``a``, state wanted before position ``p``). A need
walks ``a``'s chain backwards from its last touch before ``p`` and stops at the first row below
``a``'s cut (the latest checkpoint of ``a`` at or before ``p``; genesis if none) or already in
the slice; every row it adds raises a need for each of its other accounts at the row's
position. Each row is added once, so the walk costs O(slice x access set x log of an account's
checkpoints; O(1) where the newest applies), whatever the chain's length.

Because every need takes its own cut, one account can enter a slice at several cuts: row ``g``
reads account ``a`` from the cut ``cut(a, pos[g])`` (the latest checkpoint at or before it). All
of ``a``'s touches between that cut and ``g`` are in the slice (by induction on position), so the
replay treats each (account, cut) pair as a separate *virtual account* seeded from the cut's
holdings: no re-seeding inside the replay, and results stay exact."""

from __future__ import annotations

import numpy as np
from numba import njit

POS = 0
"""Column of ``links`` holding the packed position; account words follow."""
LANES = 8
"""Chains a closure walks at once (see :func:`closure`)."""
_LOW = (1 << 32) - 1


@njit(cache=True, inline="always")
def _id(word: int) -> int:
    """The dense id in an account word (-1: empty column)."""
    return (word >> 32) - 1


@njit(cache=True, inline="always")
def _prev(word: int) -> int:
    """The previous row in an account word (-1: none)."""
    return (word & _LOW) - 1


@njit(cache=True, inline="always")
def _word(account: int, prev: int) -> int:
    return ((account + 1) << 32) | (prev + 1)


@njit(cache=True)
def cut_index(ck_first: np.ndarray, ck_pos: np.ndarray, a: int, p: int) -> int:
    """1 + the index of the latest checkpoint of account ``a`` at a position <= ``p`` in the
    (id, position)-sorted checkpoint arrays, where ``ck_first[a]:ck_first[a + 1]`` are
    ``a``'s (:attr:`..index.Cuts.first`); 0 if there is none (the cut is genesis). The newest
    is tried first: O(1) for a state at the head."""
    if a + 1 >= ck_first.shape[0]:
        return 0
    lo, hi = int(ck_first[a]), int(ck_first[a + 1])
    if lo == hi or ck_pos[lo] > p:
        return 0
    if ck_pos[hi - 1] <= p:
        return hi
    while lo < hi:  # the first of a's checkpoints past p (there is one: the newest)
        mid = (lo + hi) >> 1
        if ck_pos[mid] <= p:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def last_before(links: np.ndarray, g: int, a: int, limit: int) -> int:
    """Follow account ``a``'s chain down from row ``g`` to its first row below ``limit``."""
    while g >= limit:
        nxt = -1
        for k in range(1, links.shape[1]):
            if _id(links[g, k]) == a:
                nxt = _prev(links[g, k])
                break
        g = nxt
    return g


@njit(cache=True)
def probe(
    links: np.ndarray,
    last: np.ndarray,
    ck_first: np.ndarray,
    ck_pos: np.ndarray,
    a: int,
    limit: int,
    p: int,
) -> tuple[int, int]:
    """Account ``a``'s cut before position ``p`` (:func:`cut_index`) and its last row below
    ``limit`` (-1: none), or -2 in place of that row when no row touches ``a`` between the cut
    and ``limit``: the cut is the state (a query's fast path, in one call)."""
    cut = cut_index(ck_first, ck_pos, a, p)
    g = last_before(links, last[a], a, limit) if a < last.shape[0] else -1
    if g < 0 or (cut > 0 and links[g, POS] < ck_pos[cut - 1]):
        return cut, -2
    return cut, g


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    if n < a.shape[0]:
        return a
    out = np.empty(2 * a.shape[0] + 16, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def closure(
    links: np.ndarray,
    ck_first: np.ndarray,
    ck_pos: np.ndarray,
    need_a: np.ndarray,
    need_g: np.ndarray,
    need_p: np.ndarray,
    limit: int = -1,
) -> np.ndarray:
    """Rows of the slice (sorted) for the initial needs (account, first row to look at, position
    the state is wanted before). With ``limit >= 0``, a walk that finds more than ``limit``
    rows stops there and returns ``[-1]`` (the caller then takes another road).

    Rows in the slice are marked in a bitmap of one bit per row (an eighth of a kilobyte per
    thousand rows, so it stays in cache while the walk jumps about the index); ``links`` is
    only read."""
    width = links.shape[1]
    has_ck = ck_pos.shape[0] > 0
    st_a = need_a.astype(np.int64)
    st_g = need_g.astype(np.int64)
    st_p = need_p.astype(np.int64)
    n = st_a.shape[0]
    top = np.int64(-1)
    for j in range(n):
        top = max(top, st_g[j])
    if top < 0:
        return np.empty(0, np.int64)
    marks = np.zeros((top >> 6) + 1, np.uint64)
    out = np.empty(64, np.int64)
    m = 0
    # Up to LANES chains are walked in turn, a row each, so that their (independent, mostly
    # uncached) reads of ``links`` overlap instead of waiting one for another.
    w_a = np.zeros(LANES, np.int64)
    w_g = np.full(LANES, -1, np.int64)
    w_c = np.zeros(LANES, np.int64)
    busy = 0
    while n > 0 or busy > 0:
        busy = 0
        for i in range(LANES):
            g = w_g[i]
            if g < 0:
                if n == 0:
                    continue
                n -= 1
                a = st_a[n]
                g = st_g[n]
                c = np.int64(0)
                if has_ck and g >= 0:
                    j = cut_index(ck_first, ck_pos, int(a), int(st_p[n]))
                    if j > 0:
                        c = ck_pos[j - 1]
                w_a[i], w_c[i] = a, c
                if g < 0:
                    continue
            a = w_a[i]
            bit = np.uint64(1) << np.uint64(g & 63)
            word = marks[g >> 6]
            if word & bit:  # already in the slice (the bitmap is read first: it is cached)
                w_g[i] = -1
                continue
            q = links[g, POS]
            if q < w_c[i]:  # below the cut: this walk ends
                w_g[i] = -1
                continue
            busy += 1
            if m == limit:
                return np.full(1, -1, np.int64)
            marks[g >> 6] = word | bit
            if m == out.shape[0]:  # growth stays off the common path (no array refcounting)
                out = _grow(out, m)
            out[m] = g
            m += 1
            nxt = -1
            for k in range(1, width):
                b = _id(links[g, k])
                if b < 0:
                    continue
                before = _prev(links[g, k])
                if b == a:
                    nxt = before
                    continue
                if before < 0 or marks[before >> 6] & (np.uint64(1) << np.uint64(before & 63)):
                    continue  # b's first touch (it enters at genesis), or already in the slice
                if n == st_a.shape[0]:
                    st_a = _grow(st_a, n)
                    st_g = _grow(st_g, n)
                    st_p = _grow(st_p, n)
                st_a[n] = b
                st_g[n] = before
                st_p[n] = q
                n += 1
            w_g[i] = nxt
    if m == 0:
        return out[:0]
    lo = out[:m].min()
    if 16 * m < top + 1 - lo:  # thin: sort what was found
        return np.sort(out[:m])
    j = 0  # dense: the bitmap in order is the sorted rows (cheaper than a sort)
    for wi in range(lo >> 6, marks.shape[0]):
        word = marks[wi]
        g = wi << 6
        while word:
            if word & np.uint64(1):
                out[j] = g
                j += 1
            word >>= np.uint64(1)
            g += 1
    return out[:m]


_UNSEEN = 1 << 62


@njit(cache=True, inline="always")
def _cut_pos(ck_first: np.ndarray, ck_pos: np.ndarray, a: int, p: int) -> int:
    """The position of ``a``'s cut for its state before ``p`` (0: genesis)."""
    j = cut_index(ck_first, ck_pos, a, p)
    return ck_pos[j - 1] if j > 0 else 0


@njit(cache=True)
def _scan_uncut(
    links: np.ndarray,
    need_a: np.ndarray,
    need_g: np.ndarray,
    order: np.ndarray,
    top: int,
    n_ids: int,
    limit: int,
) -> np.ndarray:
    """:func:`scan` without checkpoints: every cut is genesis, so an account is either live
    (some need on it was raised above) or not, one bit per account (a bitmap small enough to
    stay in cache)."""
    width = links.shape[1]
    m = need_a.shape[0]
    live = np.zeros((n_ids >> 6) + 1, np.uint64)
    one = np.uint64(1)
    out = np.empty(top + 1, np.int64)  # filled from the end: rows come in descending order
    n = 0
    k = 0
    for r in range(top, -1, -1):
        while k < m and need_g[order[k]] >= r:
            a = need_a[order[k]]
            live[a >> 6] |= one << np.uint64(a & 63)
            k += 1
        hit = False
        for col in range(1, width):
            w = links[r, col]
            if w != 0:
                b = _id(w)
                if live[b >> 6] & (one << np.uint64(b & 63)):
                    hit = True
                    break
        if not hit:
            continue
        if n == limit:
            return np.full(1, -1, np.int64)
        n += 1
        out[top + 1 - n] = r
        for col in range(1, width):
            w = links[r, col]
            if w != 0:
                b = _id(w)
                live[b >> 6] |= one << np.uint64(b & 63)
    return out[top + 1 - n :]


@njit(cache=True)
def scan(
    links: np.ndarray,
    ck_first: np.ndarray,
    ck_pos: np.ndarray,
    need_a: np.ndarray,
    need_g: np.ndarray,
    need_p: np.ndarray,
    n_ids: int,
    limit: int = -1,
) -> np.ndarray:
    """:func:`closure` by one backward pass over the rows instead of chasing links: the same
    rows, for slices too large for a walk to pay (a walk reads one scattered record per row it
    adds; this reads every row below the highest need, in order, once).

    Going down from the highest row, each account ``b`` keeps ``lo[b]``, the lowest cut among
    the needs on it raised so far (every one of them lies above the current row): a row is in
    the slice iff one of its accounts has ``pos >= lo``, and then raises a need on each of its
    accounts at its position. An initial need joins when the pass reaches its first row; the
    pass stops below the lowest cut once every need has joined."""
    width = links.shape[1]
    m = need_a.shape[0]
    order = np.argsort(-need_g.astype(np.int64), kind="mergesort")
    top = np.int64(-1)
    for j in range(m):
        top = max(top, np.int64(need_g[j]))
    if top < 0:
        return np.empty(0, np.int64)
    if ck_pos.shape[0] == 0:
        return _scan_uncut(links, need_a, need_g, order, int(top), n_ids, limit)
    lo = np.full(n_ids, _UNSEEN, np.int64)
    floor = _UNSEEN
    out = np.empty(top + 1, np.int64)  # filled from the end: rows come in descending order
    n = 0
    k = 0
    for r in range(top, -1, -1):
        while k < m and need_g[order[k]] >= r:
            j = order[k]
            a = need_a[j]
            c = _cut_pos(ck_first, ck_pos, a, need_p[j])
            lo[a] = min(lo[a], c)
            floor = min(floor, c)
            k += 1
        q = links[r, POS]
        if q < floor and k == m:
            break
        hit = False
        for col in range(1, width):
            w = links[r, col]
            if w != 0 and q >= lo[_id(w)]:
                hit = True
                break
        if not hit:
            continue
        if n == limit:
            return np.full(1, -1, np.int64)
        n += 1
        out[top + 1 - n] = r
        for col in range(1, width):
            w = links[r, col]
            if w == 0:
                continue
            b = _id(w)
            c = _cut_pos(ck_first, ck_pos, b, q)
            lo[b] = min(lo[b], c)
            floor = min(floor, c)
    return out[top + 1 - n :]


@njit(cache=True)
def row_keys(
    ids: np.ndarray, pos: np.ndarray, ck_first: np.ndarray, ck_pos: np.ndarray
) -> np.ndarray:
    """For each slice row (its dense ids, one column per account, and its position), the
    virtual-account key ``id << 31 | cut`` of each column (``cut`` from :func:`cut_index`)."""
    out = np.empty(ids.shape, np.int64)
    has_ck = ck_pos.shape[0] > 0
    for j in range(ids.shape[0]):
        p = pos[j]
        for k in range(ids.shape[1]):
            a = ids[j, k]
            c = cut_index(ck_first, ck_pos, a, p) if has_ck else 0
            out[j, k] = (a << 31) | c
    return out


@njit(cache=True)
def link(links: np.ndarray, ids: np.ndarray, last: np.ndarray, start: int, stop: int) -> None:
    """Fill the account words of rows ``start..stop`` from their ``ids`` (rows x K, -1: empty)
    and advance ``last`` (row of each account's latest touch; -1: none), in row order."""
    for g in range(start, stop):
        for k in range(ids.shape[1]):
            a = ids[g - start, k]
            if a < 0:
                links[g, 1 + k] = 0
                continue
            links[g, 1 + k] = _word(a, last[a])
            last[a] = g


@njit(cache=True)
def cut_indices(ck_first: np.ndarray, ck_pos: np.ndarray, ids: np.ndarray, p: int) -> np.ndarray:
    """:func:`cut_index` of each of ``ids`` at position ``p``."""
    out = np.empty(ids.shape[0], np.int64)
    for j in range(ids.shape[0]):
        out[j] = cut_index(ck_first, ck_pos, ids[j], p)
    return out


@njit(cache=True)
def starts(links: np.ndarray, last: np.ndarray, ids: np.ndarray, limit: int) -> np.ndarray:
    """:func:`last_before` from each account's latest touch, for every one of ``ids``."""
    out = np.empty(ids.shape[0], np.int64)
    for j in range(ids.shape[0]):
        a = ids[j]
        out[j] = last_before(links, last[a], a, limit) if a < last.shape[0] else -1
    return out
