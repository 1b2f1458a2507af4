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
