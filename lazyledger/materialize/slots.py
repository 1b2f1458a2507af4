"""A Numba hash table that maps each (account id, asset) pair a run of rows touches to a dense
balance slot, in time linear in the rows (no sort).

Keys are ``account id << 32 | asset``, hashed with a full-avalanche mixer. Slot numbering
follows first appearance in row order; it is an internal index only and never affects a
result."""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

_M1 = uint64(0xBF58476D1CE4E5B9)
_M2 = uint64(0x94D049BB133111EB)
_EMPTY = -1


@njit(cache=True, inline="always")
def _fmix(x: np.uint64) -> np.uint64:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    x = (x ^ (x >> uint64(30))) * _M1
    x = (x ^ (x >> uint64(27))) * _M2
    return x ^ (x >> uint64(31))


@njit(cache=True, inline="always")
def _mix(a: np.uint64, b: np.uint64) -> np.uint64:
    return _fmix(a ^ _fmix(b))


@njit(cache=True)
def _table_size(n: int) -> int:
    size = 16
    while size < 2 * n:
        size <<= 1
    return size


@njit(cache=True)
def index_slots(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense slot of each key (account id << 32 | asset), the distinct keys in order of first
    appearance, and the table (for :func:`find_slots`)."""
    n = queries.shape[0]
    size = _table_size(n)
    mask = uint64(size - 1)
    table = np.full(size, _EMPTY, np.int64)
    keys = np.empty(n, np.int64)
    slot = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        key = queries[i]
        h = _mix(uint64(key), uint64(0)) & mask
        while True:
            j = table[h]
            if j == _EMPTY:
                table[h] = k
                keys[k] = key
                slot[i] = k
                k += 1
                break
            if keys[j] == key:
                slot[i] = j
                break
            h = (h + uint64(1)) & mask
    return slot, keys[:k].copy(), table


@njit(cache=True)
def find_slots(table: np.ndarray, keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Slot of each query key (account << 32 | asset), or -1."""
    mask = uint64(table.shape[0] - 1)
    out = np.empty(queries.shape[0], np.int64)
    for i in range(queries.shape[0]):
        q = queries[i]
        h = _mix(uint64(q), uint64(0)) & mask
        out[i] = -1
        while True:
            j = table[h]
            if j == _EMPTY:
                break
            if keys[j] == q:
                out[i] = j
                break
            h = (h + uint64(1)) & mask
    return out


_ASSET_TABLE = 1 << 12


@njit(cache=True)
def _local_assets(
    values: np.ndarray, table: np.ndarray, seen: np.ndarray, k: int, out: np.ndarray
) -> int:
    """Local index (first appearance) of each asset in ``values``, sharing ``table``/``seen``
    with earlier calls; returns the new count, or -1 past 2048 distinct assets."""
    mask = uint64(table.shape[0] - 1)
    last_asset, last_local = np.int64(-1), np.int64(-1)
    for i in range(values.shape[0]):
        asset = np.int64(values[i])
        if asset == last_asset:  # runs of one asset are the common case
            out[i] = last_local
            continue
        h = _fmix(uint64(asset)) & mask
        while True:
            j = table[h]
            if j == _EMPTY:
                if k == seen.shape[0]:
                    return -1
                table[h] = k
                seen[k] = asset
                j = k
                k += 1
                break
            if seen[j] == asset:
                break
            h = (h + uint64(1)) & mask
        out[i] = j
        last_asset, last_local = asset, j
    return k


@njit(cache=True)
def dense_row_slots(
    id0: np.ndarray, id1: np.ndarray, asset: np.ndarray, asset2: np.ndarray, n_ids: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slots of a dense ``n_ids x A`` balance array (A distinct assets, sorted; slot = id * A +
    rank of the asset) for a run of rows, straight from its columns: the slots of
    (id0, asset), (id1, asset), (id0, asset2), (id1, asset2), and the sorted assets (empty if
    there are more than 2048 distinct ones)."""
    m = id0.shape[0]
    table = np.full(_ASSET_TABLE, _EMPTY, np.int64)
    seen = np.empty(_ASSET_TABLE // 2, np.int64)
    la = np.empty(m, np.int64)
    lb = np.empty(m, np.int64)
    k = _local_assets(asset, table, seen, 0, la)
    if k >= 0:
        k = _local_assets(asset2, table, seen, k, lb)
    if k < 0:
        e = np.empty(0, np.int64)
        return e, e, e, e, e
    assets = seen[:k].copy()
    order = np.argsort(assets)
    rank = np.empty(k, np.int64)
    for r in range(k):
        rank[order[r]] = r
    s_a0 = np.empty(m, np.int64)
    s_a1 = np.empty(m, np.int64)
    s_b0 = np.empty(m, np.int64)
    s_b1 = np.empty(m, np.int64)
    for i in range(m):
        a, b = np.int64(id0[i]) * k, np.int64(id1[i]) * k
        ra, rb = rank[la[i]], rank[lb[i]]
        s_a0[i] = a + ra
        s_a1[i] = b + ra
        s_b0[i] = a + rb
        s_b1[i] = b + rb
    return s_a0, s_a1, s_b0, s_b1, assets[order]


@njit(cache=True)
def id_span(id0: np.ndarray, id1: np.ndarray, op: np.ndarray, hosted_op: int) -> tuple[int, bool]:
    """1 + the largest account id in the rows, and whether any row has op ``hosted_op``."""
    top = np.int64(-1)
    found = False
    for i in range(id0.shape[0]):
        if id0[i] > top:
            top = np.int64(id0[i])
        if id1[i] > top:
            top = np.int64(id1[i])
        if op[i] == hosted_op:
            found = True
    return int(top) + 1, found
