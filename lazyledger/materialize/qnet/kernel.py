"""Rule 2 on the CPU with Numba: int8 x int8 -> int32 tiled matrix products, im2col
convolutions, int64 requantisation.

Every accumulator is an int32 of at most ``ACC_MAX`` in magnitude, and so is every partial sum (a
sum of a subset of the same products plus nothing else), so the tiling and the thread split change
no bit. Threads split whole output tiles: ``numba.set_num_threads`` changes speed only.

Numba's OpenMP threading layer and torch's OpenMP runtime spin against each other when one
process alternates between them on few cores (torch training ran ~4x slower right after a check
here); ``NUMBA_THREADING_LAYER=workqueue`` avoids that where only one thread launches kernels.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lazyledger.materialize.qnet.spec import Q_MAX, NetSpec
from lazyledger.materialize.qnet.weights import QNet

__all__ = ["batch_size", "numba_logits"]

I8Array = npt.NDArray[np.int8]
I32Array = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]

_ROWS: Final = 128  # rows (samples or output pixels) per tile
_COLS: Final = 64  # output channels per tile
BATCH_BYTES: Final = 1 << 25  # im2col / activation budget per batch


def _njit(parallel: bool) -> Any:
    import numba

    return numba.njit(cache=True, fastmath=False, parallel=parallel, nogil=True)


def _prange() -> Any:
    import numba

    return numba.prange


prange = _prange()


def _dot_py(a: I8Array, w: I8Array, r: int, o: int) -> Any:
    """One accumulator: ``sum_k a[r, k] * w[o, k]`` in int32."""
    acc = np.int32(0)
    for k in range(a.shape[1]):
        acc += np.int32(w[o, k]) * np.int32(a[r, k])
    return acc


def _gemm_py(a: I8Array, w: I8Array, bias: I64Array, out: I32Array) -> None:
    """``out[r, o] = bias[o] + sum_k a[r, k] * w[o, k]`` in int32, tile by tile.

    Inside a tile, 4 outputs x 4 rows are summed at once (16 accumulators, each int8 loaded once
    per 4 products); the edges of a tile take one accumulator at a time.
    """
    n_rows, fan_in = a.shape
    n_out = w.shape[0]
    row_tiles = (n_rows + _ROWS - 1) // _ROWS
    col_tiles = (n_out + _COLS - 1) // _COLS
    for t in prange(row_tiles * col_tiles):
        r0 = (t // col_tiles) * _ROWS
        o0 = (t % col_tiles) * _COLS
        r1 = min(n_rows, r0 + _ROWS)
        o1 = min(n_out, o0 + _COLS)
        o = o0
        while o + 4 <= o1:
            r = r0
            while r + 4 <= r1:
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.int32(0)
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.int32(0)
                for k in range(fan_in):
                    w0 = np.int32(w[o, k])
                    w1 = np.int32(w[o + 1, k])
                    w2 = np.int32(w[o + 2, k])
                    w3 = np.int32(w[o + 3, k])
                    a0 = np.int32(a[r, k])
                    a1 = np.int32(a[r + 1, k])
                    a2 = np.int32(a[r + 2, k])
                    a3 = np.int32(a[r + 3, k])
                    s00 += w0 * a0
                    s01 += w0 * a1
                    s02 += w0 * a2
                    s03 += w0 * a3
                    s10 += w1 * a0
                    s11 += w1 * a1
                    s12 += w1 * a2
                    s13 += w1 * a3
                    s20 += w2 * a0
                    s21 += w2 * a1
                    s22 += w2 * a2
                    s23 += w2 * a3
                    s30 += w3 * a0
                    s31 += w3 * a1
                    s32 += w3 * a2
                    s33 += w3 * a3
                b0 = np.int32(bias[o])
                b1 = np.int32(bias[o + 1])
                b2 = np.int32(bias[o + 2])
                b3 = np.int32(bias[o + 3])
                out[r, o], out[r + 1, o], out[r + 2, o], out[r + 3, o] = (
                    s00 + b0,
                    s01 + b0,
                    s02 + b0,
                    s03 + b0,
                )
                out[r, o + 1], out[r + 1, o + 1], out[r + 2, o + 1], out[r + 3, o + 1] = (
                    s10 + b1,
                    s11 + b1,
                    s12 + b1,
                    s13 + b1,
                )
                out[r, o + 2], out[r + 1, o + 2], out[r + 2, o + 2], out[r + 3, o + 2] = (
                    s20 + b2,
                    s21 + b2,
                    s22 + b2,
                    s23 + b2,
                )
                out[r, o + 3], out[r + 1, o + 3], out[r + 2, o + 3], out[r + 3, o + 3] = (
                    s30 + b3,
                    s31 + b3,
                    s32 + b3,
                    s33 + b3,
                )
                r += 4
            for rr in range(r, r1):
                for oo in range(o, o + 4):
                    out[rr, oo] = _dot(a, w, rr, oo) + np.int32(bias[oo])
            o += 4
        for oo in range(o, o1):
            for rr in range(r0, r1):
                out[rr, oo] = _dot(a, w, rr, oo) + np.int32(bias[oo])


def _rq(v: Any, mult: Any, shift: Any, lo: Any) -> Any:
    y = (v * mult + ((np.int64(1) << shift) >> 1)) >> shift
    if y < lo:
        return lo
    if y > Q_MAX:
        return np.int64(Q_MAX)
    return y


def _requant_py(
    acc: I32Array, mult: I64Array, shift: I64Array, lo: int, plane: int, out: I8Array
) -> None:
    """``acc`` (batch * plane, C) -> ``out`` (batch, C, plane) int8, per-channel multipliers."""
    n_rows, n_ch = acc.shape
    batch = n_rows // plane
    for b in prange(batch):
        for c in range(n_ch):
            m = mult[c]
            s = shift[c]
            for p in range(plane):
                out[b, c, p] = _rq(np.int64(acc[b * plane + p, c]), m, s, lo)


def _requant_in_py(x: I64Array, mult: I64Array, shift: I64Array, out: I8Array) -> None:
    """Input requantisation: ``x`` (batch, C, plane) int64 -> int8, per input channel."""
    for b in prange(x.shape[0]):
        for c in range(x.shape[1]):
            for p in range(x.shape[2]):
                out[b, c, p] = _rq(x[b, c, p], mult[c], shift[c], np.int64(-Q_MAX))


def _im2col_py(x: I8Array, k: int, st: int, oh: int, ow: int, out: I8Array) -> None:
    """``x`` (batch, C, H, W) -> ``out`` (batch * oh * ow, C * k * k), zero padding ``k // 2``."""
    batch, n_ch, h, w = x.shape
    pad = k // 2
    for by in prange(batch * oh):
        b = by // oh
        y = by % oh
        for xx in range(ow):
            row = (b * oh + y) * ow + xx
            col = 0
            for c in range(n_ch):
                for dy in range(k):
                    iy = y * st + dy - pad
                    for dx in range(k):
                        ix = xx * st + dx - pad
                        if 0 <= iy < h and 0 <= ix < w:
                            out[row, col] = x[b, c, iy, ix]
                        else:
                            out[row, col] = 0
                        col += 1


def _maxpool_py(x: I8Array, k: int, st: int, out: I8Array) -> None:
    batch, n_ch, oh, ow = out.shape
    for bc in prange(batch * n_ch):
        b = bc // n_ch
        c = bc % n_ch
        for y in range(oh):
            for xx in range(ow):
                m = x[b, c, y * st, xx * st]
                for dy in range(k):
                    for dx in range(k):
                        v = x[b, c, y * st + dy, xx * st + dx]
                        if v > m:
                            m = v
                out[b, c, y, xx] = m


def _avgpool_py(x: I8Array, mult: I64Array, shift: I64Array, lo: int, out: I8Array) -> None:
    """``x`` (batch, C, plane) -> ``out`` (batch, C, 1): requantised plane sums."""
    for b in prange(x.shape[0]):
        for c in range(x.shape[1]):
            total = np.int64(0)
            for p in range(x.shape[2]):
                total += np.int64(x[b, c, p])
            out[b, c, 0] = _rq(total, mult[c], shift[c], lo)


def _add_py(
    a: I8Array,
    r: I8Array,
    mult: I64Array,
    mult_saved: I64Array,
    shift: I64Array,
    lo: int,
    out: I8Array,
) -> None:
    """``out = requant(a * M + r * M_saved, 1, s)`` per channel; all (batch, C, plane)."""
    one = np.int64(1)
    for b in prange(a.shape[0]):
        for c in range(a.shape[1]):
            for p in range(a.shape[2]):
                v = np.int64(a[b, c, p]) * mult[c] + np.int64(r[b, c, p]) * mult_saved[c]
                out[b, c, p] = _rq(v, one, shift[c], lo)


_rq = _njit(False)(_rq)
_dot = _njit(False)(_dot_py)
_gemm = _njit(True)(_gemm_py)
_requant = _njit(True)(_requant_py)
_requant_in = _njit(True)(_requant_in_py)
_im2col = _njit(True)(_im2col_py)
_maxpool = _njit(True)(_maxpool_py)
_avgpool = _njit(True)(_avgpool_py)
_add = _njit(True)(_add_py)


def batch_size(spec: NetSpec, n: int, budget: int = BATCH_BYTES) -> int:
    """Samples per batch: the largest im2col matrix or activation of a batch stays in budget."""
    per = 1
    for s in spec.steps:
        oc, oh, ow = s.out_shape
        per = max(per, oc * oh * ow * 4)
        if s.layer.kind == "conv":
            per = max(per, oh * ow * s.fan_in)
    return max(1, min(n, 1024, budget // per))


def numba_logits(net: QNet, x: npt.ArrayLike) -> I32Array:
    """Logits ``(n, n_classes)`` int32 of integer inputs ``x`` by the Numba kernels."""
    spec = net.spec
    xa = np.asarray(x)
    n = xa.shape[0]
    c0, h0, w0 = spec.tensor_shape
    xa = xa.reshape(n, c0, h0 * w0).astype(np.int64)
    logits = np.empty((n, spec.n_classes), dtype=np.int32)
    bs = batch_size(spec, n)
    for start in range(0, n, bs):
        xb = np.ascontiguousarray(xa[start : start + bs])
        logits[start : start + xb.shape[0]] = _forward(net, xb)
    return logits


def _forward(net: QNet, xb: I64Array) -> I32Array:
    spec = net.spec
    nb = xb.shape[0]
    a: npt.NDArray[np.int8] = np.empty(xb.shape, dtype=np.int8)
    _requant_in(xb, net.input_mult, net.input_shift, a)
    saved: list[I8Array] = []
    for step, p in zip(spec.steps, net.layers, strict=True):
        ly = step.layer
        lo = 0 if ly.relu else -Q_MAX
        c, h, w = step.in_shape
        oc, oh, ow = step.out_shape
        if ly.kind in ("dense", "conv"):
            assert p.weight is not None and p.bias is not None
            if ly.kind == "dense":
                cols = a.reshape(nb, -1)
            else:
                cols = np.empty((nb * oh * ow, step.fan_in), dtype=np.int8)
                _im2col(a.reshape(nb, c, h, w), ly.kernel, ly.stride, oh, ow, cols)
            acc = np.empty((cols.shape[0], oc), dtype=np.int32)
            _gemm(cols, p.weight, p.bias, acc)
            if step.last:
                return acc
            assert p.mult is not None and p.shift is not None
            a = np.empty((nb, oc, oh * ow), dtype=np.int8)
            _requant(acc, p.mult, p.shift, lo, oh * ow, a)
        elif ly.kind == "maxpool":
            out = np.empty((nb, oc, oh, ow), dtype=np.int8)
            _maxpool(a.reshape(nb, c, h, w), ly.kernel, ly.stride, out)
            a = out.reshape(nb, oc, oh * ow)
        elif ly.kind == "avgpool":
            assert p.mult is not None and p.shift is not None
            out = np.empty((nb, oc, 1), dtype=np.int8)
            _avgpool(a.reshape(nb, c, h * w), p.mult, p.shift, lo, out)
            a = out
        elif ly.kind == "save":
            saved.append(a)
        else:  # add
            assert p.mult is not None and p.mult_saved is not None and p.shift is not None
            out = np.empty(a.shape, dtype=np.int8)
            _add(a, saved.pop(), p.mult, p.mult_saved, p.shift, lo, out)
            a = out
    raise AssertionError("a valid spec ends with a dense layer")
