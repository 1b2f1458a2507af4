"""Rule-2 weights blobs: an already-quantised network, decoded as views without copies.

Layout: ``b"LLWT"``, version ``2`` (u8), spec length (u16 BE), the spec's bytes, then the parts
of :func:`blob_parts` in order, each a raw little-endian array: weights int8 (torch layout),
biases int32, multipliers uint32, shifts uint8. The blob's length is fixed by the spec, so it is
checked before anything is read; every value range is checked while decoding (weights in chunks,
with no temporary the size of a layer). The int8 weights stay views of the caller's buffer (bytes,
bytearray, memoryview or mmap): a 128 MiB blob is never copied on the way to a kernel.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from lazyledger.materialize.dnn import InvalidBlob
from lazyledger.materialize.qnet.spec import (
    BIAS_MAX,
    MAX_WEIGHTS_BYTES,
    MULT_MAX,
    Q_MAX,
    SHIFT_MAX,
    NetSpec,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "WEIGHTS_VERSION",
    "LayerParams",
    "Part",
    "QNet",
    "blob_parts",
    "decode_weights",
    "encode_weights",
    "net_parts",
]

WEIGHTS_MAGIC: Final = b"LLWT"
WEIGHTS_VERSION: Final = 2
_CHUNK: Final = 1 << 24  # bytes of weights range-checked at a time

I8Array = npt.NDArray[np.int8]
I64Array = npt.NDArray[np.int64]

# part kind -> (little-endian dtype, lowest, highest)
_KINDS: Final[dict[str, tuple[str, int, int]]] = {
    "weight": ("i1", -Q_MAX, Q_MAX),
    "bias": ("<i4", -BIAS_MAX, BIAS_MAX),
    "mult": ("<u4", 0, MULT_MAX),
    "shift": ("u1", 0, SHIFT_MAX),
}


@attrs.frozen
class Part:
    """One array of a weights blob: its name, shape and kind (weight, bias, mult or shift)."""

    name: str
    shape: tuple[int, ...]
    kind: str
    layer: int  # -1 for the input requantisation

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def blob_parts(spec: NetSpec) -> list[Part]:
    """Every array of a weights blob for ``spec``, in blob order."""
    c_in = spec.input_channels
    out = [Part("input.mult", (c_in,), "mult", -1), Part("input.shift", (c_in,), "shift", -1)]
    for s in spec.steps:
        p, k, i = f"L{s.index}.", s.layer.kind, s.index
        ch = s.out_shape[0]
        if k in ("dense", "conv"):
            c, kk = s.in_shape[0], s.layer.kernel
            shape = (ch, s.fan_in) if k == "dense" else (ch, c, kk, kk)
            out += [Part(p + "weight", shape, "weight", i), Part(p + "bias", (ch,), "bias", i)]
            if not s.last:
                out += [Part(p + "mult", (ch,), "mult", i), Part(p + "shift", (ch,), "shift", i)]
        elif k == "avgpool":
            out += [Part(p + "mult", (ch,), "mult", i), Part(p + "shift", (ch,), "shift", i)]
        elif k == "add":
            out += [
                Part(p + "mult", (ch,), "mult", i),
                Part(p + "mult_saved", (ch,), "mult", i),
                Part(p + "shift", (ch,), "shift", i),
            ]
    return out


@attrs.frozen(eq=False)
class LayerParams:
    """A layer's integers: weight ``(out, fan_in)`` int8 (a view), the rest int64 per channel."""

    weight: I8Array | None = None
    bias: I64Array | None = None
    mult: I64Array | None = None
    mult_saved: I64Array | None = None
    shift: I64Array | None = None


@attrs.frozen(eq=False)
class QNet:
    """A decoded rule-2 network: the spec, the input requantisation and every layer's integers."""

    spec: NetSpec
    input_mult: I64Array
    input_shift: I64Array
    layers: tuple[LayerParams, ...]


def _header(spec: NetSpec) -> bytes:
    sb = spec.to_bytes()
    return WEIGHTS_MAGIC + struct.pack(">BH", WEIGHTS_VERSION, len(sb)) + sb


def encode_weights(spec: NetSpec, arrays: Sequence[npt.ArrayLike]) -> bytes:
    """Canonical bytes of integer ``arrays`` in :func:`blob_parts` order (ranges checked)."""
    parts = blob_parts(spec)
    if len(arrays) != len(parts):
        raise InvalidBlob("weights", f"{len(arrays)} arrays, spec wants {len(parts)}")
    out = bytearray(spec.weights_bytes())
    head = _header(spec)
    out[: len(head)] = head
    pos = len(head)
    for a, p in zip(arrays, parts, strict=True):
        x = np.asarray(a)
        if x.dtype.kind not in "iu":
            raise InvalidBlob("weights", f"{p.name} has dtype {x.dtype}, expected integers")
        if x.shape != p.shape:
            raise InvalidBlob("weights", f"{p.name} has shape {x.shape}, spec wants {p.shape}")
        dtype, lo, hi = _KINDS[p.kind]
        if x.size and (int(x.min()) < lo or int(x.max()) > hi):
            raise InvalidBlob("weights", f"{p.name} must lie in {lo}..{hi}")
        n = p.size * np.dtype(dtype).itemsize
        out[pos : pos + n] = np.ascontiguousarray(x, dtype=dtype).reshape(-1).view(np.uint8).data
        pos += n
    assert pos == len(out)
    return bytes(out)


def _buffer(b: object) -> memoryview:
    try:
        mv = memoryview(b)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidBlob("weights", f"expected bytes, got {type(b).__name__}") from None
    if mv.ndim != 1 or mv.itemsize != 1 or not mv.c_contiguous:
        mv = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
    return mv


def _min_i8(a: I8Array) -> tuple[int, int]:
    """Lowest value of a flat int8 view and the flat index of its first occurrence, in chunks."""
    flat = a.reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start : start + _CHUNK]
        if int(chunk.min()) < -Q_MAX:
            return -Q_MAX - 1, start + int(np.argmin(chunk))
    return -Q_MAX, -1


def decode_weights(spec: NetSpec, blob: Any) -> QNet:
    """Decode a weights blob made for ``spec``; any defect raises :class:`InvalidBlob`.

    ``blob`` is any bytes-like buffer; the int8 weights of the result are views into it.
    """
    mv = _buffer(blob)
    n = mv.nbytes
    if n > MAX_WEIGHTS_BYTES:
        raise InvalidBlob("weights", f"{n} bytes, max {MAX_WEIGHTS_BYTES}")
    if n < 7:
        raise InvalidBlob("weights", f"truncated: {n} bytes")
    if bytes(mv[:4]) != WEIGHTS_MAGIC:
        raise InvalidBlob("weights", "bad magic, not a weights blob")
    version, slen = struct.unpack(">BH", mv[4:7])
    if version != WEIGHTS_VERSION:
        raise InvalidBlob("weights", f"version {version}, rule-2 specs take {WEIGHTS_VERSION}")
    if bytes(mv[7 : 7 + slen]) != spec.to_bytes():
        raise InvalidBlob("weights", "made for another model spec")
    want = spec.weights_bytes()
    if n != want:
        raise InvalidBlob("weights", f"blob is {n} bytes, spec wants {want}")
    pos = 7 + slen
    got: dict[str, Any] = {}
    for p in blob_parts(spec):
        dtype, lo, hi = _KINDS[p.kind]
        a = np.frombuffer(mv, dtype=dtype, count=p.size, offset=pos)
        pos += a.nbytes
        if p.kind == "weight":
            low, at = _min_i8(a)
            if low < -Q_MAX:
                raise InvalidBlob("weights", f"{p.name} holds {low} at flat index {at}")
            got[p.name] = a.reshape(p.shape[0], -1)
            continue
        v = a.astype(np.int64)
        if v.size and (int(v.min()) < lo or int(v.max()) > hi):
            bad = int(np.flatnonzero((v < lo) | (v > hi))[0])
            raise InvalidBlob("weights", f"{p.name}[{bad}]={int(v[bad])} is outside {lo}..{hi}")
        got[p.name] = v
    assert pos == n
    layers = []
    for s in spec.steps:
        pre = f"L{s.index}."
        layers.append(
            LayerParams(
                weight=got.get(pre + "weight"),
                bias=got.get(pre + "bias"),
                mult=got.get(pre + "mult"),
                mult_saved=got.get(pre + "mult_saved"),
                shift=got.get(pre + "shift"),
            )
        )
    return QNet(spec, got["input.mult"], got["input.shift"], tuple(layers))


def net_parts(net: QNet) -> list[npt.NDArray[Any]]:
    """The arrays of ``net`` in :func:`blob_parts` order (``encode_weights`` takes them back)."""
    out: list[npt.NDArray[Any]] = [net.input_mult, net.input_shift]
    for p in blob_parts(net.spec)[2:]:
        lp = net.layers[p.layer]
        field = p.name.split(".", 1)[1]
        a = getattr(lp, field)
        assert a is not None
        out.append(a.reshape(p.shape))
    return out
