"""BLAKE3 in Numba for the touch commitment's bucket tree: the hash of one 65-byte parent
input ``0x01 || left:32 || right:32`` (two compressions of one chunk), and a kernel that
rewrites the changed buckets of a dense heap-ordered tree and every node above them.

Tested bit for bit against the ``blake3`` package (``tests/shards/test_hashtree.py``). The
tree is a ``(2**(depth+1), 32)`` uint8 array: row 1 is the root, rows ``2i`` and ``2i+1`` the
children of row ``i``, rows ``2**depth + b`` the buckets (row 0 is unused). A row of zeros
stands for the default hash of its level (``defaults[level]``, level 0 the buckets), so a tree
allocated with ``np.zeros`` costs no memory until it is written."""

from __future__ import annotations

import numpy as np
from numba import njit

_IV = np.array(
    [
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ],
    dtype=np.uint64,
)
_PERM = np.array([2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8], dtype=np.int64)
_M = np.uint64(0xFFFFFFFF)
_S7, _S8, _S12, _S16 = np.uint64(7), np.uint64(8), np.uint64(12), np.uint64(16)
_S20, _S24, _S25 = np.uint64(20), np.uint64(24), np.uint64(25)
_CHUNK_START = np.uint64(1)
_END_ROOT = np.uint64(2 | 8)  # CHUNK_END | ROOT
_FULL = np.uint64(64)
_ONE = np.uint64(1)


@njit(cache=True, inline="always")
def _g(s: np.ndarray, a: int, b: int, c: int, d: int, mx: np.uint64, my: np.uint64) -> None:
    s[a] = (s[a] + s[b] + mx) & _M
    x = s[d] ^ s[a]
    s[d] = ((x >> _S16) | (x << _S16)) & _M
    s[c] = (s[c] + s[d]) & _M
    x = s[b] ^ s[c]
    s[b] = ((x >> _S12) | (x << _S20)) & _M
    s[a] = (s[a] + s[b] + my) & _M
    x = s[d] ^ s[a]
    s[d] = ((x >> _S8) | (x << _S24)) & _M
    s[c] = (s[c] + s[d]) & _M
    x = s[b] ^ s[c]
    s[b] = ((x >> _S7) | (x << _S25)) & _M


@njit(cache=True)
def _compress(
    cv: np.ndarray, m: np.ndarray, block_len: np.uint64, flags: np.uint64, s: np.ndarray
) -> None:
    """One BLAKE3 compression (counter 0) of message words ``m`` into chaining value ``cv``
    (``m`` is permuted in place)."""
    for i in range(8):
        s[i] = cv[i]
        s[8 + i] = _IV[i] if i < 4 else 0
    s[14] = block_len
    s[15] = flags
    t = np.empty(16, np.uint64)
    for r in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if r < 6:
            for i in range(16):
                t[i] = m[_PERM[i]]
            for i in range(16):
                m[i] = t[i]
    for i in range(8):
        cv[i] = s[i] ^ s[8 + i]


@njit(cache=True, inline="always")
def _child(
    tree: np.ndarray, row: int, buf: np.ndarray, at: int, defaults: np.ndarray, level: int
) -> None:
    zero = True
    for j in range(32):
        if tree[row, j] != 0:
            zero = False
            break
    if zero:
        for j in range(32):
            buf[at + j] = defaults[level, j]
    else:
        for j in range(32):
            buf[at + j] = tree[row, j]


@njit(cache=True)
def _parent(
    tree: np.ndarray,
    p: int,
    buf: np.ndarray,
    s: np.ndarray,
    m: np.ndarray,
    defaults: np.ndarray,
    level: int,
) -> None:
    """tree[p] = blake3(0x01 || tree[2p] || tree[2p+1]), its children being at ``level``."""
    buf[0] = 1
    _child(tree, 2 * p, buf, 1, defaults, level)
    _child(tree, 2 * p + 1, buf, 33, defaults, level)
    cv = _IV.copy()
    for i in range(16):
        m[i] = (
            np.uint64(buf[4 * i])
            | (np.uint64(buf[4 * i + 1]) << _S8)
            | (np.uint64(buf[4 * i + 2]) << _S16)
            | (np.uint64(buf[4 * i + 3]) << _S24)
        )
    _compress(cv, m, _FULL, _CHUNK_START, s)
    m[:] = 0
    m[0] = np.uint64(buf[64])
    _compress(cv, m, _ONE, _END_ROOT, s)
    for i in range(8):
        w = cv[i]
        tree[p, 4 * i] = w & np.uint64(0xFF)
        tree[p, 4 * i + 1] = (w >> _S8) & np.uint64(0xFF)
        tree[p, 4 * i + 2] = (w >> _S16) & np.uint64(0xFF)
        tree[p, 4 * i + 3] = (w >> _S24) & np.uint64(0xFF)


@njit(cache=True)
def update(
    tree: np.ndarray,
    depth: int,
    buckets: np.ndarray,
    hashes: np.ndarray,
    defaults: np.ndarray,
    undo_rows: np.ndarray,
    undo_values: np.ndarray,
) -> int:
    """Write ``hashes[j]`` at bucket ``buckets[j]`` (sorted, distinct) and rehash every node
    above them once; each overwritten row and its old value go to ``undo_rows`` /
    ``undo_values`` (room for ``len(buckets) * (depth + 1)``). Returns the rows written."""
    buf = np.empty(65, np.uint8)
    s = np.empty(16, np.uint64)
    m = np.empty(16, np.uint64)
    first = 1 << depth
    n = len(buckets)
    rows = np.empty(n, np.int64)
    k = 0
    for j in range(n):
        i = first + buckets[j]
        undo_rows[k] = i
        undo_values[k, :] = tree[i, :]
        k += 1
        tree[i, :] = hashes[j, :]
        rows[j] = i
    for level in range(depth):
        w = 0
        for j in range(n):
            p = rows[j] >> 1
            if w == 0 or rows[w - 1] != p:
                rows[w] = p
                w += 1
        n = w
        for j in range(n):
            p = rows[j]
            undo_rows[k] = p
            undo_values[k, :] = tree[p, :]
            k += 1
            _parent(tree, p, buf, s, m, defaults, level)
    return k


@njit(cache=True)
def parent_hash(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """blake3(0x01 || left || right) of two 32-byte uint8 arrays (for tests)."""
    tree = np.zeros((4, 32), np.uint8)
    tree[2, :] = left
    tree[3, :] = right
    buf = np.empty(65, np.uint8)
    s = np.empty(16, np.uint64)
    m = np.empty(16, np.uint64)
    _parent(tree, 1, buf, s, m, np.zeros((1, 32), np.uint8), 0)
    out: np.ndarray = tree[1].copy()
    return out
