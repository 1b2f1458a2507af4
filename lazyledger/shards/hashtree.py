"""BLAKE3 in Numba for the touch commitment (``touches.py``): the hash of one 65-byte parent
input ``0x01 || left:32 || right:32`` (two compressions of one chunk; many side by side in
lanes), kernels that rewrite the changed buckets of a heap-ordered tree and every node above
them, and the kernels that keep the accounts' side of a touch map (leaves, mountain ranges,
touch tree roots, bucket lists and bucket hashes) in arrays.

Tested bit for bit against the ``blake3`` package (``tests/shards/test_hashtree.py``). Rows
are heap-ordered: row 1 is the root, rows ``2i`` and ``2i+1`` the children of row ``i``, rows
``2**depth + b`` the buckets (row 0 is unused). A row of zeros (or a row never written) stands
for the default hash of its level (``defaults[level]``, level 0 the buckets). The dense form is
a ``(2**(depth+1), 32)`` uint8 array; :class:`BucketTree` keeps only the written rows (a dict,
then an open-addressing table of rows and hashes) and turns dense once it holds many."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from blake3 import blake3
from numba import njit, uint32

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
_S8, _S16 = np.uint64(8), np.uint64(16)
_S24 = np.uint64(24)
_CHUNK_START = np.uint64(1)
_END_ROOT = np.uint64(2 | 8)  # CHUNK_END | ROOT
_FULL = np.uint64(64)
_ONE = np.uint64(1)


@njit(cache=True, inline="always")
def _rotr(x: np.uint32, n: int) -> np.uint32:
    return uint32((x >> uint32(n)) | (x << uint32(32 - n)))


@njit(cache=True, inline="always")
def _g(
    a: np.uint32, b: np.uint32, c: np.uint32, d: np.uint32, mx: np.uint32, my: np.uint32
) -> tuple[np.uint32, np.uint32, np.uint32, np.uint32]:
    a = uint32(a + b + mx)
    d = _rotr(uint32(d ^ a), 16)
    c = uint32(c + d)
    b = _rotr(uint32(b ^ c), 12)
    a = uint32(a + b + my)
    d = _rotr(uint32(d ^ a), 8)
    c = uint32(c + d)
    b = _rotr(uint32(b ^ c), 7)
    return a, b, c, d


@njit(cache=True, nogil=True)
def _compress(cv: np.ndarray, m: np.ndarray, block_len: np.uint64, flags: np.uint64) -> None:
    """One BLAKE3 compression (counter 0) of the 16 message words ``m`` into the chaining
    value ``cv`` (8 words, held in uint64 arrays), the state held in 32-bit locals
    (registers)."""
    v0, v1, v2, v3 = uint32(cv[0]), uint32(cv[1]), uint32(cv[2]), uint32(cv[3])
    v4, v5, v6, v7 = uint32(cv[4]), uint32(cv[5]), uint32(cv[6]), uint32(cv[7])
    v8, v9, v10, v11 = uint32(_IV[0]), uint32(_IV[1]), uint32(_IV[2]), uint32(_IV[3])
    v12, v13, v14, v15 = uint32(0), uint32(0), uint32(block_len), uint32(flags)
    m0, m1, m2, m3 = uint32(m[0]), uint32(m[1]), uint32(m[2]), uint32(m[3])
    m4, m5, m6, m7 = uint32(m[4]), uint32(m[5]), uint32(m[6]), uint32(m[7])
    m8, m9, m10, m11 = uint32(m[8]), uint32(m[9]), uint32(m[10]), uint32(m[11])
    m12, m13, m14, m15 = uint32(m[12]), uint32(m[13]), uint32(m[14]), uint32(m[15])
    for _ in range(7):
        v0, v4, v8, v12 = _g(v0, v4, v8, v12, m0, m1)
        v1, v5, v9, v13 = _g(v1, v5, v9, v13, m2, m3)
        v2, v6, v10, v14 = _g(v2, v6, v10, v14, m4, m5)
        v3, v7, v11, v15 = _g(v3, v7, v11, v15, m6, m7)
        v0, v5, v10, v15 = _g(v0, v5, v10, v15, m8, m9)
        v1, v6, v11, v12 = _g(v1, v6, v11, v12, m10, m11)
        v2, v7, v8, v13 = _g(v2, v7, v8, v13, m12, m13)
        v3, v4, v9, v14 = _g(v3, v4, v9, v14, m14, m15)
        m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 = (
            m2, m6, m3, m10, m7, m0, m4, m13, m1, m11, m12, m5, m9, m14, m15, m8
        )  # fmt: skip
    cv[0], cv[1], cv[2], cv[3] = v0 ^ v8, v1 ^ v9, v2 ^ v10, v3 ^ v11
    cv[4], cv[5], cv[6], cv[7] = v4 ^ v12, v5 ^ v13, v6 ^ v14, v7 ^ v15


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


@njit(cache=True, inline="always")
def _words(buf: np.ndarray, m: np.ndarray, at: int) -> None:
    for i in range(16):
        m[i] = (
            np.uint64(buf[at + 4 * i])
            | (np.uint64(buf[at + 4 * i + 1]) << _S8)
            | (np.uint64(buf[at + 4 * i + 2]) << _S16)
            | (np.uint64(buf[at + 4 * i + 3]) << _S24)
        )


@njit(cache=True, inline="always")
def _out(cv: np.ndarray, out: np.ndarray, row: int) -> None:
    for i in range(8):
        w = cv[i]
        out[row, 4 * i] = w & np.uint64(0xFF)
        out[row, 4 * i + 1] = (w >> _S8) & np.uint64(0xFF)
        out[row, 4 * i + 2] = (w >> _S16) & np.uint64(0xFF)
        out[row, 4 * i + 3] = (w >> _S24) & np.uint64(0xFF)


@njit(cache=True, nogil=True)
def _parent(
    tree: np.ndarray,
    p: int,
    buf: np.ndarray,
    m: np.ndarray,
    defaults: np.ndarray,
    level: int,
) -> None:
    """tree[p] = blake3(0x01 || tree[2p] || tree[2p+1]), its children being at ``level``."""
    buf[0] = 1
    _child(tree, 2 * p, buf, 1, defaults, level)
    _child(tree, 2 * p + 1, buf, 33, defaults, level)
    _hash65(buf, m, tree, p)


@njit(cache=True, inline="always")
def _hash65(buf: np.ndarray, m: np.ndarray, out: np.ndarray, row: int) -> None:
    """out[row] = blake3 of the 65 bytes in ``buf`` (two compressions of one chunk); ``m``
    holds 24 words (the message, then the chaining value)."""
    cv = m[16:24]
    cv[:] = _IV
    _words(buf, m, 0)
    _compress(cv, m, _FULL, _CHUNK_START)
    m[:16] = 0
    m[0] = np.uint64(buf[64])
    _compress(cv, m, _ONE, _END_ROOT)
    _out(cv, out, row)


@njit(cache=True, nogil=True)
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
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
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
            _parent(tree, p, buf, m, defaults, level)
    return k


@njit(cache=True, nogil=True)
def parent_hash(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """blake3(0x01 || left || right) of two 32-byte uint8 arrays (for tests)."""
    tree = np.zeros((4, 32), np.uint8)
    tree[2, :] = left
    tree[3, :] = right
    buf = np.empty(65, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    _parent(tree, 1, buf, m, np.zeros((1, 32), np.uint8), 0)
    out: np.ndarray = tree[1].copy()
    return out


@njit(cache=True, nogil=True)
def _node_into(
    left: np.ndarray, lr: int, right: np.ndarray, rr: int, out: np.ndarray, row: int,
    buf: np.ndarray, m: np.ndarray,
) -> None:  # fmt: skip
    """out[row] = blake3(0x01 || left[lr] || right[rr])."""
    buf[0] = 1
    for j in range(32):
        buf[1 + j] = left[lr, j]
        buf[33 + j] = right[rr, j]
    _hash65(buf, m, out, row)


@njit(cache=True, nogil=True)
def leaf_hashes(positions: np.ndarray) -> np.ndarray:
    """blake3(0x00 || position:u64 big-endian) of each position (a touch tree's leaves)."""
    n = positions.shape[0]
    out = np.empty((n, 32), np.uint8)
    m = np.zeros(24, np.uint64)  # (words 16..23: the chaining value)
    one_block = np.uint64(1 | 2 | 8)  # CHUNK_START | CHUNK_END | ROOT
    b = np.zeros(12, np.uint64)  # the message bytes: 0x00, then the position big-endian
    for k in range(n):
        p = np.uint64(positions[k])
        for j in range(8):
            b[1 + j] = (p >> np.uint64(8 * (7 - j))) & np.uint64(0xFF)
        m[0] = b[0] | (b[1] << _S8) | (b[2] << _S16) | (b[3] << _S24)
        m[1] = b[4] | (b[5] << _S8) | (b[6] << _S16) | (b[7] << _S24)
        m[2] = b[8]
        cv = m[16:24]
        cv[:] = _IV
        _compress(cv, m, np.uint64(9), one_block)
        _out(cv, out, k)
    return out


@njit(cache=True, nogil=True)
def chunk_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """blake3 of each ``data[starts[j]:ends[j]]``, each at most 1,024 bytes (one chunk: its
    64-byte blocks compressed in turn, the last one flagged CHUNK_END | ROOT)."""
    n = starts.shape[0]
    out = np.empty((n, 32), np.uint8)
    buf = np.zeros(64, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    for j in range(n):
        lo, hi = starts[j], ends[j]
        length = hi - lo
        cv = m[16:24]
        cv[:] = _IV
        blocks = max(1, (length + 63) // 64)
        for k in range(blocks):
            a = lo + 64 * k
            b = min(a + 64, hi)
            buf[:] = 0
            buf[: b - a] = data[a:b]
            _words(buf, m, 0)
            flags = np.uint64(0)
            if k == 0:
                flags |= _CHUNK_START
            if k == blocks - 1:
                flags |= _END_ROOT
            _compress(cv, m, np.uint64(b - a), flags)
        _out(cv, out, j)
    return out


@njit(cache=True, nogil=True)
def mountains(
    leaves: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run ``leaves[starts[j] : starts[j] + counts[j]]``: the peaks of its Merkle mountain
    range (largest first; run ``j``'s are rows ``first[j]..first[j + 1]`` of the peaks) and its
    root (the peaks bagged right to left: the RFC 6962 root of the run)."""
    a = starts.shape[0]
    first = np.zeros(a + 1, np.int64)
    for j in range(a):
        c = counts[j]
        bits = 0
        while c:
            bits += c & 1
            c >>= 1
        first[j + 1] = first[j] + bits
    peaks = np.empty((first[a], 32), np.uint8)
    roots = np.empty((a, 32), np.uint8)
    stack = np.empty((65, 32), np.uint8)
    buf = np.empty(65, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    for j in range(a):
        top = 0
        for k in range(counts[j]):
            stack[top, :] = leaves[starts[j] + k, :]
            n = k
            while n & 1:  # merge equal-sized mountains: node(older peak, newer)
                _node_into(stack, top - 1, stack, top, stack, top - 1, buf, m)
                top -= 1
                n >>= 1
            top += 1
        peaks[first[j] : first[j + 1], :] = stack[:top, :]
        roots[j, :] = stack[top - 1, :]
        for t in range(top - 2, -1, -1):  # bag right to left
            _node_into(stack, t, roots, j, roots, j, buf, m)
    return peaks, first, roots


def update_python(
    tree: np.ndarray,
    depth: int,
    buckets: np.ndarray,
    hashes: np.ndarray,
    defaults: np.ndarray,
    undo_rows: np.ndarray,
    undo_values: np.ndarray,
) -> int:
    """:func:`update` in plain Python (the ``blake3`` package): the semantics the kernel is
    tested against, and what runs until the kernel is loaded (:func:`warm`)."""
    zero = bytes(32)
    k = 0
    rows: list[int] = []
    for j, b in enumerate(buckets.tolist()):
        i = (1 << depth) + b
        undo_rows[k] = i
        undo_values[k] = tree[i]
        k += 1
        tree[i] = hashes[j]
        rows.append(i)
    for level in range(depth):
        default = defaults[level].tobytes()
        parents = sorted({i >> 1 for i in rows})
        for p in parents:
            left, right = tree[2 * p].tobytes(), tree[2 * p + 1].tobytes()
            left = default if left == zero else left
            right = default if right == zero else right
            undo_rows[k] = p
            undo_values[k] = tree[p]
            k += 1
            h = blake3(
                b"\x01"
                + (default if left == zero else left)
                + (default if right == zero else right)
            ).digest()
            tree[p] = np.frombuffer(h, np.uint8)
        rows = parents
    return k


_loaded = threading.Event()


def _load() -> None:
    tree = np.zeros((4, 32), np.uint8)
    rows = np.empty(4, np.int64)
    values = np.empty((4, 32), np.uint8)
    hashes = np.zeros((1, 32), np.uint8)
    defaults = np.zeros((2, 32), np.uint8)
    defaults.flags.writeable = False  # (as a touch map's defaults are: the same signature)
    update(tree, 1, np.zeros(1, np.int64), hashes, defaults, rows, values)
    keys, vals, used = np.zeros(8, np.int64), np.zeros((8, 64), np.uint8), np.zeros(1, np.int64)
    top = np.zeros((2, 32), np.uint8)
    table_update(top, keys, vals, used, 1, np.zeros(1, np.int64), hashes, defaults, rows, values)
    table_put(top, keys, vals, used, rows[:1], values[:1])
    table_rehash(keys, vals, np.zeros(16, np.int64), np.zeros((16, 64), np.uint8))
    table_rows(keys, vals)
    _load_accounts()
    _loaded.set()


def _load_accounts() -> None:
    """Load (or compile) the accounts' kernels, on one account touched once."""
    one, minus = np.zeros(1, np.int64), np.full(1, -1, np.int64)
    zeros32 = np.zeros((1, 32), np.uint8)
    count, last, at, cap, stamp = one.copy(), minus.copy(), minus.copy(), one.copy(), minus.copy()
    root, pool = zeros32.copy(), np.zeros((8, 32), np.uint8)
    push_touches(
        one, one + 1, count, last, at, cap, root, stamp, 1, pool, one.copy(), zeros32, one,
        one.copy(), one.copy(), one.copy(), np.empty((1, 5), np.int64), zeros32.copy(),
        one.copy(), zeros32.copy(),
    )  # fmt: skip
    settle_accounts(
        one, 1, count, at, pool, root, zeros32.copy(), np.zeros(1, np.uint8), minus.copy(),
        np.zeros(2, np.int32), np.empty((3, 3), np.int64),
    )  # fmt: skip


_loader: threading.Thread | None = None


def warm() -> None:
    """Start loading the compiled kernels (the tree's and the accounts') in a background
    thread (once per process); :func:`update_any` uses the plain Python twin until they are
    ready."""
    global _loader
    if _loader is None:
        _loader = threading.Thread(target=_load, name="lazyledger-hashtree", daemon=True)
        _loader.start()


def wait() -> None:
    """:func:`warm`, then wait until the kernels are loaded (benchmarks time them, not
    their loading)."""
    warm()
    _loaded.wait()


def update_any(
    tree: np.ndarray,
    depth: int,
    buckets: np.ndarray,
    hashes: np.ndarray,
    defaults: np.ndarray,
    undo_rows: np.ndarray,
    undo_values: np.ndarray,
) -> int:
    """:func:`update` once the kernel is loaded, its Python twin before (same result); the
    kernel starts loading in the background after ``WARM_AFTER`` rows."""
    global _python_rows
    if _loaded.is_set():
        return int(update(tree, depth, buckets, hashes, defaults, undo_rows, undo_values))
    k = update_python(tree, depth, buckets, hashes, defaults, undo_rows, undo_values)
    _python_rows += k
    if _python_rows > WARM_AFTER:
        warm()
    return k


WARM_AFTER = 50_000
"""Rows the Python twin writes before the kernel starts loading: a short-lived process (a CLI
command, a few appends) never pays the kernel's load time (about a second on a busy machine)."""
_python_rows = 0


# -- the sparse bucket tree -------------------------------------------------------------------

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX_INT = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


@njit(cache=True, inline="always")
def _probe(keys: np.ndarray, key: int) -> Any:
    """The slot of ``key`` (> 0) in an open-addressing table (0: free; linear probing), or
    the free slot where it goes."""
    mask = keys.shape[0] - 1
    i = np.int64(((np.uint64(key) * _MIX) >> np.uint64(32)) & np.uint64(mask))
    while keys[i] != 0 and keys[i] != key:
        i = (i + 1) & mask
    return i


@njit(cache=True, inline="always")
def _slot(keys: np.ndarray, used: np.ndarray, row: int) -> Any:
    """The slot of the sibling pair holding ``row`` (key ``row // 2 + 1``), claimed (both
    hashes zeros: the defaults) if it had none."""
    key = (row >> 1) + 1
    i = _probe(keys, key)
    if keys[i] == 0:
        keys[i] = key
        used[0] += 1
    return i


def _schedule() -> np.ndarray:
    """The message word order of each of BLAKE3's 7 rounds."""
    perm = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
    out, cur = [], list(range(16))
    for _ in range(7):
        out.append(cur)
        cur = [cur[p] for p in perm]
    return np.array(out, np.int64)


_SCHEDULE = _schedule()
_G = np.array(
    [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15],
     [0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]],
    np.int64,
)  # fmt: skip
_IV32 = _IV.astype(np.uint32)
LANES = 64
"""Messages a lane kernel compresses side by side (the loops over lanes vectorise)."""
LANES_FROM = 8
"""Fewer parents than this on a level are hashed one by one (lanes would not pay)."""


@njit(cache=True, nogil=True)
def _compress_lanes(
    cv: np.ndarray, m: np.ndarray, n: int, block_len: int, flags: int, v: np.ndarray
) -> None:
    """:func:`_compress` of ``n`` messages at once: ``cv`` (8, LANES) and ``m`` (16, LANES)
    uint32, lane ``l`` one message; ``v`` (16, LANES) is scratch."""
    for i in range(8):
        for lane in range(n):
            v[i, lane] = cv[i, lane]
            v[8 + i, lane] = 0
    for i in range(4):
        for lane in range(n):
            v[8 + i, lane] = _IV32[i]
    for lane in range(n):
        v[14, lane] = block_len
        v[15, lane] = flags
    for r in range(7):
        for q in range(8):
            a, b, c, d = _G[q, 0], _G[q, 1], _G[q, 2], _G[q, 3]
            mx, my = m[_SCHEDULE[r, 2 * q]], m[_SCHEDULE[r, 2 * q + 1]]
            for lane in range(n):
                va = uint32(v[a, lane] + v[b, lane] + mx[lane])
                vd = uint32(v[d, lane] ^ va)
                vd = uint32((vd >> uint32(16)) | (vd << uint32(16)))
                vc = uint32(v[c, lane] + vd)
                vb = uint32(v[b, lane] ^ vc)
                vb = uint32((vb >> uint32(12)) | (vb << uint32(20)))
                va = uint32(va + vb + my[lane])
                vd = uint32(vd ^ va)
                vd = uint32((vd >> uint32(8)) | (vd << uint32(24)))
                vc = uint32(vc + vd)
                vb = uint32(vb ^ vc)
                vb = uint32((vb >> uint32(7)) | (vb << uint32(25)))
                v[a, lane], v[b, lane], v[c, lane], v[d, lane] = va, vb, vc, vd
    for i in range(8):
        for lane in range(n):
            cv[i, lane] = v[i, lane] ^ v[i + 8, lane]


@njit(cache=True, nogil=True)
def hash65_lanes(msgs: np.ndarray, out: np.ndarray) -> None:
    """out[j] = blake3(msgs[j]) for 65-byte messages, :data:`LANES` at a time."""
    cv = np.empty((8, LANES), np.uint32)
    m = np.empty((16, LANES), np.uint32)
    v = np.empty((16, LANES), np.uint32)
    total = msgs.shape[0]
    for lo in range(0, total, LANES):
        n = min(LANES, total - lo)
        for lane in range(n):
            for i in range(16):
                b = 4 * i
                m[i, lane] = (
                    uint32(msgs[lo + lane, b])
                    | (uint32(msgs[lo + lane, b + 1]) << uint32(8))
                    | (uint32(msgs[lo + lane, b + 2]) << uint32(16))
                    | (uint32(msgs[lo + lane, b + 3]) << uint32(24))
                )
            for i in range(8):
                cv[i, lane] = _IV32[i]
        _compress_lanes(cv, m, n, 64, 1, v)  # CHUNK_START
        for lane in range(n):
            for i in range(16):
                m[i, lane] = 0
            m[0, lane] = msgs[lo + lane, 64]
        _compress_lanes(cv, m, n, 1, 2 | 8, v)  # CHUNK_END | ROOT
        for lane in range(n):
            for i in range(8):
                w = cv[i, lane]
                out[lo + lane, 4 * i] = w & 0xFF
                out[lo + lane, 4 * i + 1] = (w >> 8) & 0xFF
                out[lo + lane, 4 * i + 2] = (w >> 16) & 0xFF
                out[lo + lane, 4 * i + 3] = (w >> 24) & 0xFF


@njit(cache=True, nogil=True)
def table_update(
    top: np.ndarray,
    keys: np.ndarray,
    vals: np.ndarray,
    used: np.ndarray,
    depth: int,
    buckets: np.ndarray,
    hashes: np.ndarray,
    defaults: np.ndarray,
    undo_rows: np.ndarray,
    undo_values: np.ndarray,
) -> int:
    """:func:`update` over a tree kept in two parts: rows below ``len(top)`` (a power of two:
    the levels nearest the root) in the dense array ``top``, the others in a table of sibling
    pairs, ``vals[i]`` (64 bytes) holding rows ``2q`` and ``2q + 1`` where ``keys[i] == q +
    1`` (a parent's two children are one read). ``used[0]`` pairs are held; the table must
    have room for ``len(buckets) * (depth + 1)`` more."""
    buf = np.empty(65, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    first = 1 << depth
    top_n = top.shape[0]
    n = len(buckets)
    msgs = np.empty((n, 65), np.uint8)  # a level's parent inputs, hashed in lanes
    outs = np.empty((n, 32), np.uint8)
    rows = np.empty(n, np.int64)
    slots = np.empty(n, np.int64)  # the pair each row was written in (-1: in ``top``)
    k = 0
    for j in range(n):
        rows[j] = first + buckets[j]
        slots[j] = -1 if rows[j] < top_n else _slot(keys, used, rows[j])
    for j in range(n):
        i = rows[j]
        undo_rows[k] = i
        if i < top_n:
            undo_values[k, :] = top[i, :]
            top[i, :] = hashes[j, :]
        else:
            s = slots[j]
            h = 32 * (i & 1)
            undo_values[k, :] = vals[s, h : h + 32]
            vals[s, h : h + 32] = hashes[j, :]
        k += 1
    for level in range(depth):
        w = 0
        for j in range(n):
            p = rows[j] >> 1
            if w == 0 or rows[w - 1] != p:
                rows[w] = p
                slots[w] = slots[j]  # p's children are the pair its child was written in
                w += 1
        n = w
        lanes = n >= LANES_FROM
        for j in range(n):
            p = rows[j]
            msg = msgs[j] if lanes else buf
            msg[0] = 1
            if 2 * p < top_n:
                _child(top, 2 * p, msg, 1, defaults, level)
                _child(top, 2 * p + 1, msg, 33, defaults, level)
            else:
                c = slots[j]
                for half in range(2):
                    zero = True
                    for b in range(32):
                        if vals[c, 32 * half + b] != 0:
                            zero = False
                            break
                    for b in range(32):
                        msg[1 + 32 * half + b] = (
                            defaults[level, b] if zero else vals[c, 32 * half + b]
                        )
            if lanes:
                continue
            _hash65(buf, m, outs, j)
        if lanes:
            hash65_lanes(msgs[:n], outs[:n])
        if rows[0] >= top_n:  # the pairs first, in a loop of independent probes (their
            for j in range(n):  # cache misses overlap), then the writes
                slots[j] = _slot(keys, used, rows[j])
        for j in range(n):  # (this level's parents are no child read above)
            p = rows[j]
            undo_rows[k] = p
            if p < top_n:
                undo_values[k, :] = top[p, :]
                top[p, :] = outs[j, :]
                slots[j] = -1
            else:
                s = slots[j]
                h = 32 * (p & 1)
                undo_values[k, :] = vals[s, h : h + 32]
                vals[s, h : h + 32] = outs[j, :]
            k += 1
    return k


@njit(cache=True, nogil=True)
def table_put(
    top: np.ndarray,
    keys: np.ndarray,
    vals: np.ndarray,
    used: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
) -> None:
    """Row ``rows[j]`` of a tree kept as :func:`table_update` keeps it set to ``values[j]``,
    in order (room for ``len(rows)`` more pairs)."""
    top_n = top.shape[0]
    for j in range(rows.shape[0]):
        r = rows[j]
        if r < top_n:
            top[r, :] = values[j, :]
        else:
            s = _slot(keys, used, r)
            h = 32 * (r & 1)
            vals[s, h : h + 32] = values[j, :]


@njit(cache=True, nogil=True)
def table_rehash(
    keys: np.ndarray, vals: np.ndarray, into_keys: np.ndarray, into_vals: np.ndarray
) -> int:
    """Every pair of one table put in another (empty, larger); returns the pairs moved."""
    n = 0
    for i in range(keys.shape[0]):
        if keys[i] != 0:
            s = _probe(into_keys, keys[i])
            into_keys[s] = keys[i]
            into_vals[s, :] = vals[i, :]
            n += 1
    return n


@njit(cache=True, nogil=True)
def table_rows(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows a table of sibling pairs holds, and their hashes (zeros included)."""
    n = 0
    for i in range(keys.shape[0]):
        if keys[i] != 0:
            n += 2
    rows = np.empty(n, np.int64)
    values = np.empty((n, 32), np.uint8)
    w = 0
    for i in range(keys.shape[0]):
        if keys[i] != 0:
            for half in range(2):
                rows[w] = 2 * (keys[i] - 1) + half
                values[w, :] = vals[i, 32 * half : 32 * half + 32]
                w += 1
    return rows, values


def dict_update(
    tree: dict[int, bytes], depth: int, buckets: np.ndarray, hashes: np.ndarray,
    defaults: np.ndarray, undo_rows: np.ndarray, undo_values: np.ndarray,
) -> int:  # fmt: skip
    """:func:`update` over a dict of the written rows, in plain Python (the ``blake3``
    package): what a :class:`BucketTree` runs until the kernels are loaded."""
    zero = bytes(32)
    k = 0
    rows: list[int] = []
    for j, b in enumerate(buckets.tolist()):
        i = (1 << depth) + b
        undo_rows[k] = i
        undo_values[k] = np.frombuffer(tree.get(i, zero), np.uint8)
        k += 1
        tree[i] = hashes[j].tobytes()
        rows.append(i)
    for level in range(depth):
        default = defaults[level].tobytes()
        parents = sorted({i >> 1 for i in rows})
        for p in parents:
            left, right = tree.get(2 * p, zero), tree.get(2 * p + 1, zero)
            left = default if left == zero else left
            right = default if right == zero else right
            old = tree.get(p, zero)
            undo_rows[k] = p
            undo_values[k] = np.frombuffer(old, np.uint8)
            k += 1
            tree[p] = blake3(b"\x01" + left + right).digest()
        rows = parents
    return k


TOP_ROWS = 1 << 14
"""Rows nearest the root that a :class:`BucketTree` past its dict form keeps dense (512 KiB
at 32 bytes a row: the levels every path shares stay in cache, and are read without a
probe)."""
DENSE_AFTER = 1 << 19
"""Sibling pairs a :class:`BucketTree` holds in its table before it turns dense: the table
(at most half full, 72 bytes a slot) would then take more memory than the dense array
(``2**(depth+1)`` rows of 32 bytes)."""


class BucketTree:
    """A heap-ordered tree of 32-byte hashes holding only its written rows: a dict while the
    kernels load (:func:`warm`), then the :data:`TOP_ROWS` rows nearest the root dense and the
    others in an open-addressing table of sibling pairs (at most half full, doubled as it
    fills), then, past :data:`DENSE_AFTER` pairs, the dense array. A fresh tree so costs
    memory (and page faults) in proportion to the rows written, not the 64 MiB of the dense
    form; every form gives the same hashes (tested)."""

    def __init__(self, depth: int, defaults: np.ndarray) -> None:
        self.depth, self.defaults = depth, defaults
        self._dict: dict[int, bytes] | None = {}
        self._keys = np.zeros(0, np.int64)
        self._vals = np.zeros((0, 64), np.uint8)
        self._used = np.zeros(1, np.int64)
        self._top = np.zeros((min(TOP_ROWS, 2 << depth), 32), np.uint8)
        self._dense: np.ndarray | None = None

    @property
    def form(self) -> str:
        """``dict``, ``table`` or ``dense``."""
        return "dict" if self._dict is not None else "dense" if self._dense is not None else "table"

    def node(self, row: int) -> bytes:
        """The 32 bytes at ``row`` (zeros: its level's default)."""
        if self._dict is not None:
            return self._dict.get(row, bytes(32))
        if self._dense is not None:
            return bytes(self._dense[row])
        if row < len(self._top):
            return bytes(self._top[row])
        keys, key = self._keys, (row >> 1) + 1
        mask = len(keys) - 1
        i = (((key * _MIX_INT) & _M64) >> 32) & mask
        while True:
            held = int(keys[i])
            if held == key:
                h = 32 * (row & 1)
                return bytes(self._vals[i, h : h + 32])
            if held == 0:
                return bytes(32)
            i = (i + 1) & mask

    def update(self, buckets: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write ``hashes[j]`` at bucket ``buckets[j]`` (sorted, distinct int64) and rehash
        every node above them; returns the rows written and their old values (the undo log,
        for :meth:`restore`)."""
        global _python_rows
        room = len(buckets) * (self.depth + 1)
        rows, values = np.empty(room, np.int64), np.empty((room, 32), np.uint8)
        if self._dict is not None and _loaded.is_set():
            self._to_table()
        if self._dict is not None:
            k = dict_update(self._dict, self.depth, buckets, hashes, self.defaults, rows, values)
            _python_rows += k
            if _python_rows > WARM_AFTER:
                warm()
        elif self._dense is not None:
            k = update_any(self._dense, self.depth, buckets, hashes, self.defaults, rows, values)
        else:
            self._reserve(room)
            if self._dense is not None:
                return self.update(buckets, hashes)
            k = table_update(
                self._top, self._keys, self._vals, self._used, self.depth, buckets, hashes,
                self.defaults, rows, values,
            )  # fmt: skip
        return rows[:k], values[:k]

    def restore(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values[j]`` back at ``rows[j]`` (an undo log of :meth:`update`)."""
        if self._dict is not None:
            zero = bytes(32)
            for r, v in zip(rows.tolist(), values, strict=True):
                h = v.tobytes()
                if h == zero:
                    self._dict.pop(r, None)
                else:
                    self._dict[r] = h
        elif self._dense is not None:
            self._dense[rows] = values
        else:
            self._reserve(len(rows))
            if self._dense is not None:
                self._dense[rows] = values
            else:
                self._put(rows, values)

    def load(self) -> None:
        """Leave the dict form now (loading the kernels here if they are not yet loaded)."""
        if self._dict is not None:
            if not _loaded.is_set():
                _load()
            self._to_table()

    def _to_table(self) -> None:
        held = self._dict or {}
        self._dict = None
        rows = np.fromiter(held, np.int64, len(held))
        values = np.frombuffer(bytearray(b"".join(held.values())), np.uint8).reshape(-1, 32)
        self._keys = np.zeros(256, np.int64)
        self._vals = np.zeros((256, 64), np.uint8)
        self._reserve(len(held))
        if self._dense is not None:
            self._dense[rows] = values
        else:
            self._put(rows, values)

    def _reserve(self, more: int) -> None:
        """Room for ``more`` pairs: the table at most half full, or the dense form."""
        need = 2 * (int(self._used[0]) + more)
        if need <= len(self._keys):
            return
        if need > 2 * DENSE_AFTER:
            rows, values = table_rows(self._keys, self._vals)
            self._dense = np.zeros((2 << self.depth, 32), np.uint8)
            self._dense[: len(self._top)] = self._top
            self._dense[rows] = values
            self._keys, self._vals = np.zeros(0, np.int64), np.zeros((0, 64), np.uint8)
            return
        size = 1 << (need - 1).bit_length()
        keys, vals = np.zeros(size, np.int64), np.zeros((size, 64), np.uint8)
        self._used[0] = table_rehash(self._keys, self._vals, keys, vals)
        self._keys, self._vals = keys, vals

    def _put(self, rows: np.ndarray, values: np.ndarray) -> None:
        table_put(self._top, self._keys, self._vals, self._used, rows, values)


# -- the accounts' side of a touch map --------------------------------------------------------
#
# Arrays indexed by an account's dense id (see ``touches.TouchMap``): its touch count, the
# peaks of its Merkle mountain range in a pool (``pool[at[a] + i]`` the peak of the perfect
# subtree of 2**i leaves, for each set bit i of the count; ``cap[a]`` rows reserved, at most
# 64), its touch tree root, its last entry in the touch log (positions appended since the map
# was built whole, each linked to the account's previous one), and its bucket list (accounts
# of one bucket linked in account order from ``head[bucket] - 1``). Every write a stage makes
# goes to an undo log first.


@njit(cache=True, inline="always")
def _leaf_into(p: np.int64, m: np.ndarray, out: np.ndarray, row: int) -> None:
    """out[row] = blake3(0x00 || p:u64 big-endian); ``m`` holds 24 words."""
    q = np.uint64(p)
    m[:16] = 0
    byte = np.uint64(0xFF)
    m[0] = (
        (((q >> np.uint64(56)) & byte) << _S8)
        | (((q >> np.uint64(48)) & byte) << _S16)
        | (((q >> np.uint64(40)) & byte) << _S24)
    )
    m[1] = (
        ((q >> np.uint64(32)) & byte)
        | (((q >> np.uint64(24)) & byte) << _S8)
        | (((q >> np.uint64(16)) & byte) << _S16)
        | (((q >> np.uint64(8)) & byte) << _S24)
    )
    m[2] = q & byte
    cv = m[16:24]
    cv[:] = _IV
    _compress(cv, m, np.uint64(9), np.uint64(1 | 2 | 8))
    _out(cv, out, row)


@njit(cache=True, nogil=True)
def push_touches(
    ids: np.ndarray,
    positions: np.ndarray,
    count: np.ndarray,
    last: np.ndarray,
    at: np.ndarray,
    cap: np.ndarray,
    root: np.ndarray,
    stamp: np.ndarray,
    serial: int,
    pool: np.ndarray,
    pool_n: np.ndarray,
    frozen_peaks: np.ndarray,
    frozen_lo: np.ndarray,
    log_pos: np.ndarray,
    log_prev: np.ndarray,
    log_n: np.ndarray,
    undo_ids: np.ndarray,
    undo_roots: np.ndarray,
    undo_slots: np.ndarray,
    undo_peaks: np.ndarray,
) -> tuple[int, int]:
    """Append touch ``positions[j]`` to account ``ids[j]``'s touch list and mountain range,
    in order. An account first touched under stage ``serial`` has its (id, count, at, cap,
    last) and root logged to ``undo_ids`` / ``undo_roots``; each pool row about to be
    overwritten is logged to ``undo_slots`` / ``undo_peaks``. An account of a map built whole
    (``at < 0`` with a count) has its peaks copied from ``frozen_peaks`` (largest first, from
    row ``frozen_lo[a]``) first. The pool needs room for 192 rows per distinct account, the
    log for ``len(ids)``. Returns the entries of the two undo logs."""
    buf = np.empty(65, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    h = np.empty((2, 32), np.uint8)  # the leaf of the last position, and the work row
    ka = 0
    ks = 0
    prev = np.int64(-1)
    for j in range(ids.shape[0]):
        a = ids[j]
        p = positions[j]
        n = count[a]
        if stamp[a] != serial:
            stamp[a] = serial
            undo_ids[ka, 0] = a
            undo_ids[ka, 1] = n
            undo_ids[ka, 2] = at[a]
            undo_ids[ka, 3] = cap[a]
            undo_ids[ka, 4] = last[a]
            undo_roots[ka, :] = root[a, :]
            ka += 1
        t = 0  # the slot written: the count's trailing ones
        while (n >> t) & 1:
            t += 1
        if at[a] < 0 or t >= cap[a]:  # a slot, or a larger one
            size = 4 if at[a] < 0 else 2 * cap[a]
            top = t
            while n >> top:  # (and every peak a map built whole holds)
                top += 1
            while size <= top:
                size *= 2
            new = pool_n[0]
            pool_n[0] += size
            if at[a] >= 0:
                pool[new : new + cap[a], :] = pool[at[a] : at[a] + cap[a], :]
            elif n > 0:  # the peaks of a map built whole, largest first
                r = frozen_lo[a]
                for i in range(63, -1, -1):
                    if (n >> i) & 1:
                        pool[new + i, :] = frozen_peaks[r, :]
                        r += 1
            at[a] = new
            cap[a] = size
        if p != prev:  # (the accounts of one transaction share its leaf)
            _leaf_into(p, m, h, 0)
            prev = p
        h[1, :] = h[0, :]
        base = at[a]
        for i in range(t):  # merge equal-sized mountains: node(older peak, newer)
            _node_into(pool, base + i, h, 1, h, 1, buf, m)
        undo_slots[ks] = base + t
        undo_peaks[ks, :] = pool[base + t, :]
        ks += 1
        pool[base + t, :] = h[1, :]
        count[a] = n + 1
        k = log_n[0]
        log_pos[k] = p
        log_prev[k] = last[a]
        last[a] = k
        log_n[0] = k + 1
    return ka, ks


@njit(cache=True, inline="always")
def _bucket(names: np.ndarray, a: int, shift: int) -> int:
    return ((int(names[a, 0]) << 16) | (int(names[a, 1]) << 8) | int(names[a, 2])) >> shift


@njit(cache=True, inline="always")
def _before(names: np.ndarray, a: int, b: int) -> bool:
    for j in range(32):
        if names[a, j] != names[b, j]:
            return bool(names[a, j] < names[b, j])
    return False


@njit(cache=True, nogil=True)
def settle_accounts(
    dirty: np.ndarray,
    depth: int,
    count: np.ndarray,
    at: np.ndarray,
    pool: np.ndarray,
    root: np.ndarray,
    names: np.ndarray,
    listed: np.ndarray,
    nxt: np.ndarray,
    head: np.ndarray,
    undo_links: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Bring the accounts ``dirty`` (sorted, distinct, each with a count) up to date: their
    touch tree roots (the peaks bagged right to left), their places in their buckets' lists
    (``listed``), and the hash of each bucket they are in. Each list write is logged to
    ``undo_links`` (rows ``kind, index, old``: kind 0 ``nxt``, 1 ``head``, 2 ``listed``; room
    for ``3 * len(dirty)``). Returns the buckets (sorted), their hashes, the messages hashed
    (``data[starts[j]:ends[j]]``; over 1,024 bytes, several chunks, the hash is left for the
    caller), and the log's length."""
    buf = np.empty(65, np.uint8)
    m = np.empty(24, np.uint64)  # (words 16..23: the chaining value)
    shift = 24 - depth
    k = 0
    for a in dirty:
        n = count[a]
        low = 0
        while not (n >> low) & 1:
            low += 1
        root[a, :] = pool[at[a] + low, :]
        for i in range(low + 1, 64):
            if (n >> i) & 1:
                _node_into(pool, at[a] + i, root, a, root, a, buf, m)
        if not listed[a]:
            b = _bucket(names, a, shift)
            undo_links[k, 0], undo_links[k, 1], undo_links[k, 2] = 2, a, 0
            k += 1
            listed[a] = 1
            first = head[b] - 1
            if first < 0 or _before(names, a, first):
                undo_links[k, 0], undo_links[k, 1], undo_links[k, 2] = 1, b, head[b]
                k += 1
                undo_links[k, 0], undo_links[k, 1], undo_links[k, 2] = 0, a, nxt[a]
                k += 1
                nxt[a] = first
                head[b] = a + 1
            else:
                c = first
                while nxt[c] >= 0 and _before(names, nxt[c], a):
                    c = nxt[c]
                undo_links[k, 0], undo_links[k, 1], undo_links[k, 2] = 0, a, nxt[a]
                k += 1
                undo_links[k, 0], undo_links[k, 1], undo_links[k, 2] = 0, c, nxt[c]
                k += 1
                nxt[a] = nxt[c]
                nxt[c] = a
    buckets = np.empty(dirty.shape[0], np.int64)
    for j in range(dirty.shape[0]):
        buckets[j] = _bucket(names, dirty[j], shift)
    buckets = np.unique(buckets)
    nb = buckets.shape[0]
    starts = np.empty(nb, np.int64)
    ends = np.empty(nb, np.int64)
    size = 0
    for j in range(nb):
        starts[j] = size
        size += 1
        c = head[buckets[j]] - 1
        while c >= 0:
            size += 72
            c = nxt[c]
        ends[j] = size
    data = np.empty(size, np.uint8)
    for j in range(nb):
        w = starts[j]
        data[w] = 3
        w += 1
        c = head[buckets[j]] - 1
        while c >= 0:
            data[w : w + 32] = names[c, :]
            n = count[c]
            for i in range(8):
                data[w + 32 + i] = (n >> (8 * (7 - i))) & 0xFF
            data[w + 40 : w + 72] = root[c, :]
            w += 72
            c = nxt[c]
    hashes = chunk_hashes(data, starts, ends)
    return buckets, hashes, data, starts, ends, k
