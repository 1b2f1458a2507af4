"""Numba hash tables that map each (account, asset) pair a run of rows touches to a dense
balance slot, in time linear in the rows (no sorting of 32-byte ids).

Accounts are read as four uint64 words and hashed with a full-avalanche mixer (synthetic ids
such as small big-endian integers must not collide). Slot numbering follows first appearance
in row order; it is an internal index only and never affects a result."""

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
def index_accounts(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense index of each account (rows of 4 uint64 words), the unique accounts in order of
    first appearance, and the open-addressing table (for lookups)."""
    n = words.shape[0]
    size = _table_size(n)
    mask = uint64(size - 1)
    table = np.full(size, _EMPTY, np.int64)
    unique = np.empty((n, 4), np.uint64)
    index = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        h = _mix(words[i, 0] ^ _fmix(words[i, 2]), words[i, 1] ^ _fmix(words[i, 3])) & mask
        while True:
            j = table[h]
            if j == _EMPTY:
                table[h] = k
                unique[k] = words[i]
                index[i] = k
                k += 1
                break
            if (
                unique[j, 0] == words[i, 0]
                and unique[j, 1] == words[i, 1]
                and unique[j, 2] == words[i, 2]
                and unique[j, 3] == words[i, 3]
            ):
                index[i] = j
                break
            h = (h + uint64(1)) & mask
    return index, unique[:k].copy(), table


@njit(cache=True)
def find_account(table: np.ndarray, unique: np.ndarray, w: np.ndarray) -> int:
    """Dense index of account ``w`` (4 words), or -1."""
    mask = uint64(table.shape[0] - 1)
    h = _mix(w[0] ^ _fmix(w[2]), w[1] ^ _fmix(w[3])) & mask
    while True:
        j = table[h]
        if j == _EMPTY:
            return -1
        if (
            unique[j, 0] == w[0]
            and unique[j, 1] == w[1]
            and unique[j, 2] == w[2]
            and unique[j, 3] == w[3]
        ):
            return int(j)
        h = (h + uint64(1)) & mask


@njit(cache=True)
def index_slots(
    accounts: np.ndarray, assets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense slot of each (account index, asset) pair, the slot keys (account << 32 | asset)
    in order of first appearance, and the table."""
    n = accounts.shape[0]
    size = _table_size(n)
    mask = uint64(size - 1)
    table = np.full(size, _EMPTY, np.int64)
    keys = np.empty(n, np.int64)
    slot = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        key = (accounts[i] << 32) | np.int64(assets[i])
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


def words_of(accounts: np.ndarray) -> np.ndarray:
    """32-byte accounts (V32 array) as rows of four uint64 words."""
    return np.ascontiguousarray(accounts).view(np.uint64).reshape(-1, 4)


@njit(cache=True)
def find_accounts(table: np.ndarray, unique: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Dense index of each account (rows of 4 words), or -1."""
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        out[i] = find_account(table, unique, words[i])
    return out
