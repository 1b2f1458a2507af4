"""Everything deterministic about DNN ops: model specs, blob codecs, quantisation, the integer
inference kernel (Numba) with its NumPy twin, and the claim check.

Verdict rules are versioned, and a job names its rule through its model spec: the spec's version
byte is the rule. This module is rule 1 (below) and the entry points for both rules;
:func:`decode_spec` reads either spec, and :func:`check_claim`, :func:`infer` and
:func:`decode_weights` dispatch on it. Rule 2 (int8 networks with int32 accumulators, run by
Numba, NumPy or torch integer products) lives in :mod:`lazyledger.materialize.qnet` and is
specified in ``docs/verdict-v2.md``. Old jobs keep rule 1: nothing below changes with rule 2.

Rule 1:

Training is not reproducible, so the ledger never re-trains: a claim names a weights blob, and its
validity is the accuracy of *integer* inference on the job's validation set. Every step from the
weights blob to the verdict is exact integer arithmetic, except the quantisation step, which uses
only IEEE-exact float operations (scaling by a power of two, round-half-to-even). Hence every
machine, thread count and CPU gets the same verdict.

Quantisation rule (fixed, part of the ledger's semantics):

* weights: per tensor, ``e = frexp(max|w|).exponent`` (``e = 0`` for an all-zero tensor) and
  ``k = W_BITS - e``; ``q = rint(w * 2**k)`` (round half to even), so ``|q| <= 2**W_BITS``;
* biases use the layer's accumulator scale ``2**(k + s_in)`` and are clipped to ``±BIAS_MAX``;
* inputs are the dataset's integers, read at scale ``2**input_shift``; hidden activations are
  ``ReLU(acc)`` re-quantised to ``ACT_FRAC_BITS`` fractional bits by an arithmetic right shift
  with round-half-up (or a saturating left shift), then clipped to ``ACT_MAX``;
* the class is the argmax of the last layer's int64 accumulators; ties go to the lowest index.

These bounds keep every accumulator below ``2**56``, so int64 never overflows.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs
import numpy as np
import numpy.typing as npt

from lazyledger.errors import LedgerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lazyledger.materialize.qnet import NetSpec, QNet

__all__ = [
    "ACT_FRAC_BITS",
    "ACT_MAX",
    "ARCHS",
    "BIAS_MAX",
    "W_BITS",
    "AnySpec",
    "InvalidBlob",
    "InvalidModel",
    "ModelSpec",
    "QuantModel",
    "Verdict",
    "check_claim",
    "decode_dataset",
    "decode_spec",
    "decode_weights",
    "digits_blobs",
    "encode_dataset",
    "encode_weights",
    "infer",
    "infer_reference",
    "load_dataset",
    "quantize",
    "run_kernel",
    "run_reference",
    "try_quantize",
]

IntArray = npt.NDArray[np.int64]
I32Array = npt.NDArray[np.int32]
F32Array = npt.NDArray[np.float32]

# ---------------------------------------------------------------------------------------------
# Errors


class InvalidModel(LedgerError):
    """A model spec (or a claim-check task built on it) is malformed or outside the limits."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid model spec: {reason}")


class InvalidBlob(LedgerError):
    """A dataset or weights blob is malformed, oversized, or does not fit its model spec."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind, self.reason = kind, reason
        super().__init__(f"invalid {kind} blob: {reason}")


# ---------------------------------------------------------------------------------------------
# Limits and fixed-point constants (changing any of them changes verdicts: bump the versions)

W_BITS: Final = 14  # |quantised weight| <= 2**W_BITS
ACT_FRAC_BITS: Final = 10  # hidden activations carry 10 fractional bits
ACT_MAX: Final = (1 << 24) - 1  # hidden activations saturate here (real value just under 16384)
BIAS_MAX: Final = 1 << 54  # quantised biases are clipped to ±BIAS_MAX
INPUT_MIN: Final = -(1 << 15)  # dataset features are int16
INPUT_MAX: Final = (1 << 15) - 1
LABEL_MAX: Final = (1 << 16) - 1

ARCHS: Final = ("mlp", "cnn")
MAX_PARAMS: Final = 1 << 22
MAX_WIDTH: Final = 4096  # MLP input and hidden widths
MAX_MLP_HIDDEN: Final = 8
MAX_CLASSES: Final = 1024
MAX_CNN_IN_CHANNELS: Final = 16
MAX_CNN_CHANNELS: Final = 64
MAX_CNN_SIDE: Final = 32
MAX_INPUT_SHIFT: Final = 15

SPEC_MAGIC: Final = b"LLMS"
SPEC_VERSION: Final = 1
MAX_SPEC_BYTES: Final = 64
DATASET_MAGIC: Final = b"LLDS"
DATASET_VERSION: Final = 1
MAX_DATASET_BYTES: Final = 64 << 20
MAX_DATASET_RANK: Final = 3
WEIGHTS_MAGIC: Final = b"LLWT"
WEIGHTS_VERSION: Final = 1
MAX_WEIGHTS_BYTES: Final = 4 * MAX_PARAMS + 128

_ARCH_CODE: Final = {"mlp": 1, "cnn": 2}
_KIND_DENSE: Final = 0
_KIND_CONV: Final = 1


# ---------------------------------------------------------------------------------------------
# Model spec


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_range(name: str, v: object, lo: int, hi: int) -> int:
    if not _is_int(v):
        raise InvalidModel(f"{name} must be an int, got {type(v).__name__}")
    assert isinstance(v, int)
    if not lo <= v <= hi:
        raise InvalidModel(f"{name}={v} is outside {lo}..{hi}")
    return v


def _as_int_tuple(v: object) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(v)
    raise InvalidModel(f"expected a tuple of ints, got {type(v).__name__}")


@attrs.frozen
class ModelSpec:
    """An architecture from a small registry, with its sizes; only ints, so bytes are canonical.

    ``"mlp"``: ``input_shape=(n_inputs,)``, ``hidden`` = hidden layer widths (ReLU after each).
    ``"cnn"``: ``input_shape=(channels, height, width)``, ``hidden`` = output channels of one or
    two 3x3 convolutions (stride 1, zero padding 1, ReLU after each), then one dense layer.
    Inputs are read as ``x / 2**input_shift``.
    """

    arch: str
    input_shape: tuple[int, ...] = attrs.field(converter=_as_int_tuple)
    hidden: tuple[int, ...] = attrs.field(converter=_as_int_tuple)
    n_classes: int
    input_shift: int = 0

    @property
    def rule(self) -> int:
        """The verdict rule this spec names (its version byte)."""
        return SPEC_VERSION

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.arch, str) or self.arch not in _ARCH_CODE:
            raise InvalidModel(f"unknown arch {self.arch!r}; known: {', '.join(ARCHS)}")
        _check_range("n_classes", self.n_classes, 2, MAX_CLASSES)
        _check_range("input_shift", self.input_shift, 0, MAX_INPUT_SHIFT)
        if self.arch == "mlp":
            if len(self.input_shape) != 1:
                raise InvalidModel(f"mlp input_shape must be (n_inputs,), got {self.input_shape}")
            _check_range("n_inputs", self.input_shape[0], 1, MAX_WIDTH)
            if len(self.hidden) > MAX_MLP_HIDDEN:
                raise InvalidModel(
                    f"mlp has {len(self.hidden)} hidden layers, max {MAX_MLP_HIDDEN}"
                )
            for i, h in enumerate(self.hidden):
                _check_range(f"hidden[{i}]", h, 1, MAX_WIDTH)
        else:
            if len(self.input_shape) != 3:
                raise InvalidModel(f"cnn input_shape must be (c, h, w), got {self.input_shape}")
            _check_range("input channels", self.input_shape[0], 1, MAX_CNN_IN_CHANNELS)
            _check_range("input height", self.input_shape[1], 1, MAX_CNN_SIDE)
            _check_range("input width", self.input_shape[2], 1, MAX_CNN_SIDE)
            if len(self.hidden) not in (1, 2):
                raise InvalidModel(f"cnn needs 1 or 2 conv layers, got {len(self.hidden)}")
            for i, c in enumerate(self.hidden):
                _check_range(f"conv channels[{i}]", c, 1, MAX_CNN_CHANNELS)
        n = self.n_params()
        if n > MAX_PARAMS:
            raise InvalidModel(f"{n} parameters, max {MAX_PARAMS}")

    @classmethod
    def mlp(
        cls, n_inputs: int, hidden: Sequence[int], n_classes: int, input_shift: int = 0
    ) -> ModelSpec:
        """A multi-layer perceptron ``n_inputs -> *hidden -> n_classes``."""
        return cls("mlp", (n_inputs,), tuple(hidden), n_classes, input_shift)

    @classmethod
    def cnn(
        cls,
        input_shape: tuple[int, int, int],
        channels: Sequence[int],
        n_classes: int,
        input_shift: int = 0,
    ) -> ModelSpec:
        """A small CNN: 3x3 same-padded convolutions with ReLU, then a dense layer."""
        return cls("cnn", input_shape, tuple(channels), n_classes, input_shift)

    @property
    def input_size(self) -> int:
        """Number of features per sample."""
        return int(np.prod(self.input_shape))

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Ordered ``(name, shape)`` of every tensor; names and layouts are torch's."""
        out: list[tuple[str, tuple[int, ...]]] = []
        if self.arch == "mlp":
            widths = [self.input_shape[0], *self.hidden, self.n_classes]
            for i in range(len(widths) - 1):
                out.append((f"fc{i}.weight", (widths[i + 1], widths[i])))
                out.append((f"fc{i}.bias", (widths[i + 1],)))
        else:
            c, h, w = self.input_shape
            for i, oc in enumerate(self.hidden):
                out.append((f"conv{i}.weight", (oc, c, 3, 3)))
                out.append((f"conv{i}.bias", (oc,)))
                c = oc
            out.append(("fc.weight", (self.n_classes, c * h * w)))
            out.append(("fc.bias", (self.n_classes,)))
        return out

    def n_params(self) -> int:
        """Total number of scalar parameters."""
        return sum(int(np.prod(s)) for _, s in self.param_shapes())

    def to_bytes(self) -> bytes:
        """Canonical bytes: magic, version, arch, input_shift, n_classes, shape, hidden (BE)."""
        return b"".join(
            [
                SPEC_MAGIC,
                struct.pack(">BBBH", SPEC_VERSION, _ARCH_CODE[self.arch], self.input_shift, 0),
                struct.pack(">H", self.n_classes),
                struct.pack(
                    f">B{len(self.input_shape)}H", len(self.input_shape), *self.input_shape
                ),
                struct.pack(f">B{len(self.hidden)}H", len(self.hidden), *self.hidden),
            ]
        )

    @classmethod
    def from_bytes(cls, b: bytes) -> ModelSpec:
        """Decode :meth:`to_bytes` output; anything else raises :class:`InvalidModel`."""
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidModel(f"spec bytes must be bytes, got {type(b).__name__}")
        b = bytes(b)
        if len(b) > MAX_SPEC_BYTES:
            raise InvalidModel(f"spec is {len(b)} bytes, max {MAX_SPEC_BYTES}")
        r = _Reader(b, "spec")
        try:
            if r.take(4) != SPEC_MAGIC:
                raise InvalidModel("bad magic, not a model spec")
            version, code, shift, reserved = r.unpack(">BBBH")
            if version != SPEC_VERSION:
                raise InvalidModel(f"spec version {version}, this library reads {SPEC_VERSION}")
            if reserved != 0:
                raise InvalidModel(f"reserved field is {reserved}, must be 0")
            arch = {v: k for k, v in _ARCH_CODE.items()}.get(code)
            if arch is None:
                raise InvalidModel(f"unknown arch code {code}")
            (n_classes,) = r.unpack(">H")
            (rank,) = r.unpack(">B")
            shape = r.unpack(f">{rank}H")
            (n_hidden,) = r.unpack(">B")
            hidden = r.unpack(f">{n_hidden}H")
            r.finish()
        except InvalidBlob as e:
            raise InvalidModel(e.reason) from None
        return cls(arch, shape, hidden, n_classes, shift)


AnySpec: TypeAlias = "ModelSpec | NetSpec"
"""A model spec of either verdict rule."""


def decode_spec(b: bytes) -> AnySpec:
    """A model spec blob of any rule: version 2 is :class:`~lazyledger.materialize.qnet.NetSpec`,
    anything else is read as :class:`ModelSpec` (which names the version it cannot read)."""
    if isinstance(b, (bytes, bytearray, memoryview)) and bytes(b[:5]) == SPEC_MAGIC + b"\x02":
        from lazyledger.materialize.qnet import NetSpec

        return NetSpec.from_bytes(b)
    return ModelSpec.from_bytes(b)


class _Reader:
    """Cursor over a blob; every short read is an :class:`InvalidBlob` naming the offset."""

    def __init__(self, b: bytes, kind: str) -> None:
        self.b, self.pos, self.kind = b, 0, kind

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.b):
            raise InvalidBlob(self.kind, f"truncated: need {n} bytes at offset {self.pos}")
        out = self.b[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return tuple(int(v) for v in struct.unpack(fmt, self.take(struct.calcsize(fmt))))

    def finish(self) -> None:
        if self.pos != len(self.b):
            raise InvalidBlob(self.kind, f"{len(self.b) - self.pos} trailing bytes")


def _as_bytes(b: object, kind: str) -> bytes:
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise InvalidBlob(kind, f"expected bytes, got {type(b).__name__}")
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# Dataset blobs: magic, version, rank, sample shape (u16 BE), n (u32 BE), x int16 LE, y uint16 LE


def encode_dataset(x: npt.ArrayLike, y: npt.ArrayLike) -> bytes:
    """Canonical bytes of integer features ``x`` (n, *shape) and labels ``y`` (n,)."""
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.dtype.kind not in "iu" or ya.dtype.kind not in "iu":
        raise InvalidBlob(
            "dataset", f"features and labels must be integers ({xa.dtype}, {ya.dtype})"
        )
    if xa.ndim < 2 or xa.ndim > MAX_DATASET_RANK + 1:
        raise InvalidBlob("dataset", f"features must have 2..{MAX_DATASET_RANK + 1} dims")
    if ya.ndim != 1 or ya.shape[0] != xa.shape[0]:
        raise InvalidBlob(
            "dataset", f"labels shape {ya.shape} does not match {xa.shape[0]} samples"
        )
    n, shape = xa.shape[0], xa.shape[1:]
    if n < 1 or any(not 1 <= d <= 0xFFFF for d in shape) or n > 0xFFFFFFFF:
        raise InvalidBlob("dataset", f"bad dataset shape {xa.shape}")
    if xa.size and (int(xa.min()) < INPUT_MIN or int(xa.max()) > INPUT_MAX):
        raise InvalidBlob("dataset", f"features must lie in {INPUT_MIN}..{INPUT_MAX}")
    if int(ya.min()) < 0 or int(ya.max()) > LABEL_MAX:
        raise InvalidBlob("dataset", f"labels must lie in 0..{LABEL_MAX}")
    size = 4 + 2 + 2 * len(shape) + 4 + 2 * xa.size + 2 * n
    if size > MAX_DATASET_BYTES:
        raise InvalidBlob("dataset", f"{size} bytes, max {MAX_DATASET_BYTES}")
    return b"".join(
        [
            DATASET_MAGIC,
            struct.pack(f">BB{len(shape)}HI", DATASET_VERSION, len(shape), *shape, n),
            xa.astype("<i2").tobytes(),
            ya.astype("<u2").tobytes(),
        ]
    )


def decode_dataset(b: bytes) -> tuple[IntArray, IntArray]:
    """Decode a dataset blob into int64 ``x`` (n, *shape) and int64 ``y`` (n,)."""
    b = _as_bytes(b, "dataset")
    if len(b) > MAX_DATASET_BYTES:
        raise InvalidBlob("dataset", f"{len(b)} bytes, max {MAX_DATASET_BYTES}")
    r = _Reader(b, "dataset")
    if r.take(4) != DATASET_MAGIC:
        raise InvalidBlob("dataset", "bad magic, not a dataset")
    version, rank = r.unpack(">BB")
    if version != DATASET_VERSION:
        raise InvalidBlob("dataset", f"version {version}, this library reads {DATASET_VERSION}")
    if not 1 <= rank <= MAX_DATASET_RANK:
        raise InvalidBlob("dataset", f"sample rank {rank} is outside 1..{MAX_DATASET_RANK}")
    shape = r.unpack(f">{rank}H")
    (n,) = r.unpack(">I")
    if n < 1 or 0 in shape:
        raise InvalidBlob("dataset", f"empty dataset (n={n}, shape={shape})")
    per = int(np.prod(shape))
    # Check the length before allocating anything sized by the header.
    if len(b) - r.pos != 2 * n * per + 2 * n:
        raise InvalidBlob(
            "dataset",
            f"body is {len(b) - r.pos} bytes, header says {2 * n * per + 2 * n}",
        )
    x = np.frombuffer(r.take(2 * n * per), dtype="<i2").astype(np.int64).reshape((n, *shape))
    y = np.frombuffer(r.take(2 * n), dtype="<u2").astype(np.int64)
    r.finish()
    return x, y


def load_dataset(spec: AnySpec, b: bytes) -> tuple[IntArray, IntArray]:
    """Decode a dataset blob for ``spec``: x reshaped (C order) to ``(n, *input_shape)``.

    A dataset fits a spec when its per-sample size equals the spec's and every label is a class.
    """
    x, y = decode_dataset(b)
    per = int(np.prod(x.shape[1:]))
    if per != spec.input_size:
        raise InvalidBlob(
            "dataset", f"samples have {per} features, spec {spec.arch} wants {spec.input_size}"
        )
    if int(y.max()) >= spec.n_classes:
        raise InvalidBlob("dataset", f"label {int(y.max())} >= n_classes {spec.n_classes}")
    return x.reshape((x.shape[0], *spec.input_shape)), y


def digits_blobs(val_fraction_permille: int = 250) -> tuple[bytes, bytes]:
    """scikit-learn's bundled 8x8 digits as (train, val) blobs of shape (64,), pixels 0..16.

    Deterministic split: sample ``i`` goes to validation iff ``(i * p) // 1000`` increases at ``i``
    (``p`` = permille), i.e. evenly spaced; 250 puts every 4th sample (i % 4 == 3) in validation.
    """
    from sklearn.datasets import load_digits

    p = _check_range("val_fraction_permille", val_fraction_permille, 1, 999)
    d = load_digits()
    x = np.asarray(d.data).astype(np.int64)
    y = np.asarray(d.target).astype(np.int64)
    idx = np.arange(x.shape[0], dtype=np.int64)
    is_val = ((idx + 1) * p) // 1000 > (idx * p) // 1000
    return encode_dataset(x[~is_val], y[~is_val]), encode_dataset(x[is_val], y[is_val])


# ---------------------------------------------------------------------------------------------
# Weights blobs: magic, version, spec length (u8), spec bytes, n_tensors (u16 BE), float32 LE


def encode_weights(spec: ModelSpec, tensors: Sequence[npt.ArrayLike]) -> bytes:
    """Canonical bytes of float32 ``tensors`` in ``spec.param_shapes()`` order."""
    shapes = spec.param_shapes()
    if len(tensors) != len(shapes):
        raise InvalidBlob("weights", f"{len(tensors)} tensors, spec wants {len(shapes)}")
    parts = [WEIGHTS_MAGIC, struct.pack(">B", WEIGHTS_VERSION)]
    sb = spec.to_bytes()
    parts += [struct.pack(">B", len(sb)), sb, struct.pack(">H", len(shapes))]
    for t, (name, shape) in zip(tensors, shapes, strict=True):
        a = np.asarray(t)
        if a.dtype.kind != "f":
            raise InvalidBlob("weights", f"{name} has dtype {a.dtype}, expected floats")
        if a.shape != shape:
            raise InvalidBlob("weights", f"{name} has shape {a.shape}, spec wants {shape}")
        with np.errstate(over="ignore"):  # an overflow to inf is reported just below
            a32 = a.astype("<f4")
        if not np.isfinite(a32).all():
            raise InvalidBlob("weights", f"{name} has a NaN or infinite value (as float32)")
        parts.append(a32.tobytes())
    return b"".join(parts)


def decode_weights(spec: AnySpec, b: bytes) -> list[F32Array] | QNet:
    """Decode a weights blob made for ``spec``; any defect raises :class:`InvalidBlob`.

    Rule 1 gives float32 tensors; rule 2 a :class:`~lazyledger.materialize.qnet.QNet` whose
    int8 weights are views of ``b`` (no copy)."""
    if not isinstance(spec, ModelSpec):
        from lazyledger.materialize import qnet

        return qnet.decode_weights(spec, b)
    return _decode_weights1(spec, b)


def _decode_weights1(spec: ModelSpec, b: bytes) -> list[F32Array]:
    b = _as_bytes(b, "weights")
    if len(b) > MAX_WEIGHTS_BYTES:
        raise InvalidBlob("weights", f"{len(b)} bytes, max {MAX_WEIGHTS_BYTES}")
    r = _Reader(b, "weights")
    if r.take(4) != WEIGHTS_MAGIC:
        raise InvalidBlob("weights", "bad magic, not a weights blob")
    (version,) = r.unpack(">B")
    if version != WEIGHTS_VERSION:
        raise InvalidBlob("weights", f"version {version}, this library reads {WEIGHTS_VERSION}")
    (slen,) = r.unpack(">B")
    if r.take(slen) != spec.to_bytes():
        raise InvalidBlob("weights", "made for another model spec")
    shapes = spec.param_shapes()
    (count,) = r.unpack(">H")
    if count != len(shapes):
        raise InvalidBlob("weights", f"{count} tensors, spec wants {len(shapes)}")
    want = 4 * spec.n_params()
    if len(b) - r.pos != want:
        raise InvalidBlob("weights", f"body is {len(b) - r.pos} bytes, spec wants {want}")
    out: list[F32Array] = []
    for name, shape in shapes:
        n = int(np.prod(shape))
        a = np.frombuffer(r.take(4 * n), dtype="<f4").astype(np.float32).reshape(shape)
        if not np.isfinite(a).all():
            bad = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
            raise InvalidBlob("weights", f"{name} has a NaN or infinite value at flat index {bad}")
        out.append(a)
    r.finish()
    return out


# ---------------------------------------------------------------------------------------------
# Quantisation

# Layer plan columns (one int64 row per layer, read by both kernels).
_P_KIND, _P_IC, _P_IH, _P_IW, _P_OUT, _P_WOFF, _P_BOFF, _P_SHIFT, _P_LAST = range(9)


@attrs.frozen(eq=False)
class QuantModel:
    """A quantised model: a layer plan plus flat int64 weights and biases (see module doc)."""

    spec: ModelSpec
    plan: IntArray  # (n_layers, 9) int64 rows: kind, in c/h/w, out, offsets, shift, last
    weights: I32Array  # |q| <= 2**W_BITS
    biases: IntArray
    max_width: int  # largest activation vector, for scratch buffers


def _weight_exponent(w: npt.NDArray[np.float64]) -> int:
    """``k`` such that ``|w| * 2**k <= 2**W_BITS`` with the top value in ``(2**(W_BITS-1), ..]``."""
    m = float(np.max(np.abs(w))) if w.size else 0.0
    _, e = np.frexp(m)  # m = f * 2**e, f in [0.5, 1); frexp(0) = (0, 0)
    return W_BITS - int(e)


def quantize(spec: ModelSpec, tensors: Sequence[F32Array]) -> QuantModel:
    """Quantise decoded float32 tensors by the fixed rule of the module docstring."""
    shapes = spec.param_shapes()
    if len(tensors) != len(shapes) or any(
        np.shape(t) != s for t, (_, s) in zip(tensors, shapes, strict=False)
    ):
        raise InvalidBlob("weights", "tensors do not match the spec's shapes")
    # Layer geometry: (kind, in_c, in_h, in_w, out) in order.
    geom: list[tuple[int, int, int, int, int]] = []
    if spec.arch == "mlp":
        widths = [spec.input_shape[0], *spec.hidden, spec.n_classes]
        geom = [(_KIND_DENSE, widths[i], 1, 1, widths[i + 1]) for i in range(len(widths) - 1)]
    else:
        c, h, w = spec.input_shape
        for oc in spec.hidden:
            geom.append((_KIND_CONV, c, h, w, oc))
            c = oc
        geom.append((_KIND_DENSE, c, h, w, spec.n_classes))
    plan = np.zeros((len(geom), 9), dtype=np.int64)
    qws: list[I32Array] = []
    qbs: list[IntArray] = []
    s_in = spec.input_shift
    woff = boff = 0
    max_width = spec.input_size
    for li, (kind, ic, ih, iw, out) in enumerate(geom):
        w64 = np.asarray(tensors[2 * li], dtype=np.float64)
        b64 = np.asarray(tensors[2 * li + 1], dtype=np.float64)
        k = _weight_exponent(w64)
        # ldexp by an int is exact here (no overflow/underflow for float32 inputs and these k).
        qw = np.rint(np.ldexp(w64, k)).astype(np.int32).ravel()
        qb_f = np.clip(np.rint(np.ldexp(b64, k + s_in)), -float(BIAS_MAX), float(BIAS_MAX))
        qb = qb_f.astype(np.int64)
        last = li == len(geom) - 1
        plan[li] = (kind, ic, ih, iw, out, woff, boff, k + s_in - ACT_FRAC_BITS, int(last))
        qws.append(qw)
        qbs.append(qb)
        woff += qw.size
        boff += qb.size
        max_width = max(max_width, out * (ih * iw if kind == _KIND_CONV else 1))
        s_in = ACT_FRAC_BITS
    return QuantModel(spec, plan, np.concatenate(qws), np.concatenate(qbs), max_width)


def try_quantize(spec: ModelSpec, weights_blob: bytes) -> QuantModel | str:
    """Decode and quantise a claimed weights blob; a defect becomes a reason, not an error."""
    try:
        return quantize(spec, _decode_weights1(spec, weights_blob))
    except InvalidBlob as e:
        return str(e)


# ---------------------------------------------------------------------------------------------
# Integer inference: the Numba kernel and its NumPy twin


def _njit(fn: Any) -> Any:
    import numba

    return numba.njit(cache=True, fastmath=False, parallel=False)(fn)


def _requant_py(acc: int, shift: int) -> int:
    """ReLU, then rescale by ``2**-shift`` (round half up, or saturating left shift), clip."""
    if acc <= 0:
        return 0
    if shift >= 62:  # acc < 2**56, so the rounded quotient is 0
        return 0
    if shift > 0:
        out = (acc + (1 << (shift - 1))) >> shift
    elif shift == 0:
        out = acc
    else:
        s = -shift
        if s >= 40 or acc > (ACT_MAX >> s):
            return ACT_MAX
        out = acc << s
    return min(out, ACT_MAX)


_requant = _njit(_requant_py)


_BATCH: Final = 64  # samples per kernel batch; activations are laid out (feature, sample)


def _kernel_py(
    plan: IntArray, weights: I32Array, biases: IntArray, x: I32Array, max_width: int
) -> IntArray:
    """Class ids of ``x`` (n, input_size); fixed loop order, int64 accumulators.

    Samples go through in batches with the sample index innermost, so the loops vectorise; each
    sample's arithmetic is exactly that of :func:`run_reference` (int32 operands, int64 sums).
    """
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int64)
    buf0 = np.zeros((max_width, _BATCH), dtype=np.int32)
    buf1 = np.zeros((max_width, _BATCH), dtype=np.int32)
    acc = np.zeros((max_width, _BATCH), dtype=np.int64)
    n_layers = plan.shape[0]
    for start in range(0, n, _BATCH):
        nb = min(_BATCH, n - start)
        cur = buf0
        nxt = buf1
        for i in range(x.shape[1]):
            for s in range(nb):
                cur[i, s] = x[start + s, i]
        n_out = 0
        for li in range(n_layers):
            kind = plan[li, 0]
            ic = plan[li, 1]
            ih = plan[li, 2]
            iw = plan[li, 3]
            n_out = plan[li, 4]
            woff = plan[li, 5]
            boff = plan[li, 6]
            shift = plan[li, 7]
            last = plan[li, 8]
            if kind == 0:
                n_in = ic * ih * iw
                for o in range(n_out):
                    bias = biases[boff + o]
                    for s in range(nb):
                        acc[o, s] = bias
                    base = woff + o * n_in
                    for i in range(n_in):
                        wv = np.int64(weights[base + i])
                        for s in range(nb):
                            acc[o, s] += wv * cur[i, s]
                n_acc = n_out
            else:
                # 3x3 convolution, zero padding 1: each output plane starts at the bias and adds
                # one shifted input plane per (channel, dy, dx) tap over its valid window.
                plane = ih * iw
                for o in range(n_out):
                    ob = o * plane
                    bias = biases[boff + o]
                    for p in range(plane):
                        for s in range(nb):
                            acc[ob + p, s] = bias
                    for c in range(ic):
                        for dy in range(3):
                            y0 = max(0, 1 - dy)
                            y1 = min(ih, ih + 1 - dy)
                            for dx in range(3):
                                x0 = max(0, 1 - dx)
                                x1 = min(iw, iw + 1 - dx)
                                wv = np.int64(weights[woff + ((o * ic + c) * 3 + dy) * 3 + dx])
                                for yy in range(y0, y1):
                                    src = (c * ih + yy + dy - 1) * iw + dx - 1
                                    dst = ob + yy * iw
                                    for xx in range(x0, x1):
                                        for s in range(nb):
                                            acc[dst + xx, s] += wv * cur[src + xx, s]
                n_acc = n_out * plane
            if last == 0:
                for j in range(n_acc):
                    for s in range(nb):
                        nxt[j, s] = _requant(acc[j, s], shift)
                tmp = cur
                cur = nxt
                nxt = tmp
        for s in range(nb):
            best = 0
            for k in range(1, n_out):
                if acc[k, s] > acc[best, s]:
                    best = k
            labels[start + s] = best
    return labels


_kernel = _njit(_kernel_py)


def _as_inputs(spec: AnySpec, x: npt.ArrayLike) -> I32Array:
    xa = np.asarray(x)
    if xa.dtype.kind not in "iu":
        raise InvalidBlob("inputs", f"features must be integers, got {xa.dtype}")
    if xa.ndim < 1 or xa.shape[0] == 0 or xa.size != xa.shape[0] * spec.input_size:
        raise InvalidBlob("inputs", f"shape {xa.shape} does not fit input size {spec.input_size}")
    if int(xa.min()) < INPUT_MIN or int(xa.max()) > INPUT_MAX:
        raise InvalidBlob("inputs", f"features must lie in {INPUT_MIN}..{INPUT_MAX}")
    return np.ascontiguousarray(xa.reshape(xa.shape[0], spec.input_size), dtype=np.int32)


def run_kernel(qm: QuantModel, x: npt.ArrayLike) -> IntArray:
    """Class ids of integer inputs ``x`` under ``qm``, by the Numba kernel."""
    xs = _as_inputs(qm.spec, x)
    out: IntArray = _kernel(qm.plan, qm.weights, qm.biases, xs, qm.max_width)
    return out


def run_reference(qm: QuantModel, x: npt.ArrayLike) -> IntArray:
    """The slow, obviously exact twin of :func:`run_kernel`: Python ints in NumPy object arrays."""
    a: npt.NDArray[Any] = _as_inputs(qm.spec, x).astype(object)
    n = a.shape[0]
    for row in qm.plan.tolist():
        kind, ic, ih, iw, out, woff, boff, shift, last = row
        n_w = out * ic * ih * iw if kind == _KIND_DENSE else out * ic * 9
        w = qm.weights[woff : woff + n_w].astype(object)
        b = qm.biases[boff : boff + out].astype(object)
        if kind == _KIND_DENSE:
            acc = a @ w.reshape(out, ic * ih * iw).T + b
        else:
            img = a.reshape(n, ic, ih, iw)
            pad = np.zeros((n, ic, ih + 2, iw + 2), dtype=object)
            pad[:, :, 1:-1, 1:-1] = img
            wk = w.reshape(out, ic, 3, 3)
            acc = np.zeros((n, out, ih, iw), dtype=object) + b.reshape(1, out, 1, 1)
            for dy in range(3):
                for dx in range(3):
                    patch = pad[:, :, dy : dy + ih, dx : dx + iw]  # (n, ic, ih, iw)
                    term = np.tensordot(patch, wk[:, :, dy, dx], axes=([1], [1]))  # (n,ih,iw,o)
                    acc = acc + term.transpose(0, 3, 1, 2)
            acc = acc.reshape(n, out * ih * iw)
        if last:
            return np.array([int(np.argmax(r)) for r in acc], dtype=np.int64)
        flat = [_requant_exact(int(v), shift) for v in acc.ravel()]
        a = np.array(flat, dtype=object).reshape(acc.shape)
    raise AssertionError("plan has no last layer")


def _requant_exact(acc: int, shift: int) -> int:
    """:func:`_requant_py` restated with unbounded integers (no shift-width cases)."""
    if acc <= 0:
        return 0
    if shift >= 0:
        return min((2 * acc + (1 << shift)) // (2 << shift) if shift else acc, ACT_MAX)
    return min(acc * (1 << -shift), ACT_MAX)


def infer(
    spec: AnySpec, weights_blob: bytes, x: npt.ArrayLike, *, backend: str | None = None
) -> IntArray:
    """Class ids of integer inputs ``x`` (n, *input_shape): rule 1 by the Numba integer kernel,
    rule 2 by ``backend`` (default: :func:`~lazyledger.materialize.qnet.pick_backend`)."""
    if not isinstance(spec, ModelSpec):
        from lazyledger.materialize import qnet

        return qnet.classes(qnet.decode_weights(spec, weights_blob), _as_inputs(spec, x), backend)
    return run_kernel(quantize(spec, _decode_weights1(spec, weights_blob)), x)


def infer_reference(spec: AnySpec, weights_blob: bytes, x: npt.ArrayLike) -> IntArray:
    """Like :func:`infer`, by the NumPy reference (rule 2: the NumPy twin)."""
    if not isinstance(spec, ModelSpec):
        return infer(spec, weights_blob, x, backend="numpy")
    return run_reference(quantize(spec, _decode_weights1(spec, weights_blob)), x)


# ---------------------------------------------------------------------------------------------
# Claims


@attrs.frozen
class Verdict:
    """Outcome of a claim check; only ints, bools and a deterministic reason."""

    passed: bool
    correct: int
    total: int
    reason: str


def check_claim(
    spec: AnySpec,
    weights_blob: bytes,
    val_blob: bytes,
    threshold_permille: int,
    *,
    backend: str | None = None,
) -> Verdict:
    """Pass iff ``correct * 1000 >= threshold_permille * total`` on the validation blob.

    A malformed claim (weights blob) fails with a reason; a malformed task (spec, validation blob,
    threshold) raises, since the job transaction should never have been accepted. ``backend``
    picks how rule 2 computes (never what): see :func:`~lazyledger.materialize.qnet.pick_backend`.
    """
    if not _is_int(threshold_permille) or not 0 <= threshold_permille <= 1000:
        raise InvalidModel(f"threshold_permille={threshold_permille!r} is outside 0..1000")
    x, y = load_dataset(spec, val_blob)
    total = int(y.shape[0])
    if isinstance(spec, ModelSpec):
        qm = try_quantize(spec, weights_blob)
        if isinstance(qm, str):
            return Verdict(False, 0, total, f"rejected claim: {qm}")
        predicted = run_kernel(qm, x)
    else:
        from lazyledger.materialize import qnet

        try:
            net = qnet.decode_weights(spec, weights_blob)
        except InvalidBlob as e:
            return Verdict(False, 0, total, f"rejected claim: {e}")
        predicted = qnet.classes(net, x, backend)
    correct = int(np.count_nonzero(predicted == y))
    passed = correct * 1000 >= threshold_permille * total
    op = ">=" if passed else "<"
    reason = f"{correct}/{total} correct: {correct * 1000} {op} {threshold_permille}*{total}"
    return Verdict(passed, correct, total, reason)
