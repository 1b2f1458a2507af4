"""Verdict rule 2: the network spec (model-spec blob version 2), its limits and its shape plan.

A rule-2 spec is a flat program of layers over a ``(C, H, W)`` int8 tensor (a rank-1 input of
``F`` features is ``(F, 1, 1)``). Its bytes are canonical (only ints, every unused field 0), and
decoding checks every limit below, including the size of the weights blob the spec implies, before
anything sized by the spec is allocated. The full rule is in ``docs/verdict-v2.md``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

import attrs

from lazyledger.materialize.dnn import InvalidModel
from lazyledger.materialize.dnn import _as_int_tuple as _int_tuple
from lazyledger.materialize.dnn import _check_range as _in

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ACC_MAX",
    "BIAS_MAX",
    "KINDS",
    "MAX_ACTIVATION",
    "MAX_CHANNELS",
    "MAX_CLASSES",
    "MAX_FAN_IN",
    "MAX_LAYERS",
    "MAX_MACS",
    "MAX_PARAMS",
    "MAX_SAVED",
    "MAX_SPEC_BYTES",
    "MAX_WEIGHTS_BYTES",
    "MAX_WIDTH",
    "MULT_MAX",
    "Q_MAX",
    "SHIFT_MAX",
    "SPEC_VERSION",
    "Layer",
    "NetSpec",
    "Step",
]

# ---------------------------------------------------------------------------------------------
# Limits (changing any of them changes which jobs are valid: that is a new rule version)

SPEC_VERSION: Final = 2
Q_MAX: Final = 127  # every int8 weight and activation lies in [-Q_MAX, Q_MAX] (never -128)
MAX_FAN_IN: Final = 1 << 16  # products summed into one accumulator
BIAS_MAX: Final = 1 << 30  # |bias| <= BIAS_MAX
# |acc| <= MAX_FAN_IN * Q_MAX**2 + BIAS_MAX = 2_130_771_968 < 2**31 - 1: int32 never overflows.
ACC_MAX: Final = MAX_FAN_IN * Q_MAX * Q_MAX + BIAS_MAX
MULT_MAX: Final = (1 << 31) - 1  # requantisation multipliers lie in [0, MULT_MAX]
SHIFT_MAX: Final = 62  # and shifts in [0, SHIFT_MAX]: |v * M| + 2**61 < 2**63 for |v| < 2**31
MAX_PARAMS: Final = 1 << 27  # weights + biases
MAX_WEIGHTS_BYTES: Final = 1 << 29  # the weights blob a spec implies (header included)
MAX_MACS: Final = 1 << 33  # multiply-accumulates per sample
MAX_ACTIVATION: Final = 1 << 22  # elements of any tensor, per sample
MAX_WIDTH: Final = 1 << 16  # dense outputs
MAX_CHANNELS: Final = 4096  # convolution outputs
MAX_CLASSES: Final = 4096
MAX_LAYERS: Final = 64
MAX_SAVED: Final = 4  # residual stack depth
MAX_SPEC_BYTES: Final = 1024
CONV_KERNELS: Final = (1, 3, 5, 7)
CONV_STRIDES: Final = (1, 2)
POOL_KERNELS: Final = (2, 3)
POOL_STRIDES: Final = (1, 2, 3)

KINDS: Final = ("dense", "conv", "maxpool", "avgpool", "save", "add")
_CODE: Final = {k: i + 1 for i, k in enumerate(KINDS)}
_RELU_OK: Final = frozenset({"dense", "conv", "avgpool", "add"})
_MAGIC: Final = b"LLMS"
_LAYER: Final = struct.Struct(">BBIBB")
_HEAD: Final = struct.Struct(">4sBBHB")


def _layer_tuple(v: object) -> tuple[Layer, ...]:
    if isinstance(v, (tuple, list)) and all(isinstance(x, Layer) for x in v):
        return tuple(v)
    raise InvalidModel("layers must be a sequence of Layer")


@attrs.frozen
class Layer:
    """One layer of a rule-2 network; fields a kind does not use are 0.

    ``dense``: ``width`` outputs over the flattened input (C order). ``conv``: ``width`` output
    channels, ``kernel`` x ``kernel`` taps, ``stride``, zero padding ``kernel // 2``. ``maxpool``:
    ``kernel`` x ``kernel`` window, ``stride``, no padding. ``avgpool``: global sum over H x W,
    then requantised. ``save``: push the tensor for a later ``add``, which pops it and adds it to
    the current tensor with one multiplier each. ``relu`` clamps a requantised result at 0.
    """

    kind: str
    width: int = 0
    kernel: int = 0
    stride: int = 0
    relu: bool = False

    @classmethod
    def dense(cls, width: int, *, relu: bool = True) -> Layer:
        """A fully connected layer (the last layer of every network is ``dense(n_classes)``)."""
        return cls("dense", width, 0, 0, relu)

    @classmethod
    def conv(cls, channels: int, kernel: int = 3, stride: int = 1, *, relu: bool = True) -> Layer:
        """A same-padded convolution (batch norm is folded into it by the provider)."""
        return cls("conv", channels, kernel, stride, relu)

    @classmethod
    def maxpool(cls, kernel: int = 2, stride: int | None = None) -> Layer:
        """Max over ``kernel`` x ``kernel`` windows (stride defaults to the kernel)."""
        return cls("maxpool", 0, kernel, kernel if stride is None else stride)

    @classmethod
    def avgpool(cls, *, relu: bool = False) -> Layer:
        """Global average pooling: a sum over the plane, scaled by the requantisation."""
        return cls("avgpool", 0, 0, 0, relu)

    @classmethod
    def save(cls) -> Layer:
        """Push the current tensor (the start of a residual branch)."""
        return cls("save")

    @classmethod
    def add(cls, *, relu: bool = True) -> Layer:
        """Pop the saved tensor and add it to the current one (the end of a residual branch)."""
        return cls("add", 0, 0, 0, relu)

    def to_bytes(self) -> bytes:
        return _LAYER.pack(_CODE[self.kind], int(self.relu), self.width, self.kernel, self.stride)


@attrs.frozen
class Step:
    """A layer with its geometry: input and output shapes ``(C, H, W)``, fan-in, counts."""

    index: int
    layer: Layer
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    fan_in: int  # products per accumulator (dense, conv), else 0
    params: int  # weights + biases
    macs: int  # multiply-accumulates per sample (dense, conv)
    last: bool

    @property
    def channels(self) -> int:
        """Requantisation channels of this step (output channels; 0 where none)."""
        if self.last or self.layer.kind in ("maxpool", "save"):
            return 0
        return self.out_shape[0]


@attrs.frozen
class NetSpec:
    """A rule-2 network: an input shape, a layer program and a class count (see module doc)."""

    input_shape: tuple[int, ...] = attrs.field(converter=_int_tuple)
    layers: tuple[Layer, ...] = attrs.field(converter=_layer_tuple)
    n_classes: int
    _steps: tuple[Step, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_steps", self._plan())

    # -- named constructors -------------------------------------------------------------------

    @classmethod
    def mlp(cls, n_inputs: int, hidden: Sequence[int], n_classes: int) -> NetSpec:
        """``n_inputs -> *hidden -> n_classes`` with ReLU after every hidden layer."""
        layers = [Layer.dense(h) for h in hidden] + [Layer.dense(n_classes, relu=False)]
        return cls((n_inputs,), tuple(layers), n_classes)

    @classmethod
    def resnet(
        cls,
        input_shape: tuple[int, int, int],
        stages: Sequence[tuple[int, int]],
        n_classes: int,
        *,
        pool: bool = False,
    ) -> NetSpec:
        """A ResNet of basic blocks: a 3x3 stem (plus a 2x2 max pool if ``pool``), then per
        ``(channels, blocks)`` stage a 3x3 stride-2 transition (not before the first stage) and
        ``blocks`` residual blocks ``save, conv, conv (no ReLU), add``; global average pooling and
        a dense classifier."""
        if not stages:
            raise InvalidModel("a resnet needs at least one stage")
        layers = [Layer.conv(stages[0][0])]
        if pool:
            layers.append(Layer.maxpool(2))
        for i, (ch, blocks) in enumerate(stages):
            if i:
                layers.append(Layer.conv(ch, 3, 2))
            for _ in range(blocks):
                layers += [Layer.save(), Layer.conv(ch), Layer.conv(ch, relu=False), Layer.add()]
        layers += [Layer.avgpool(), Layer.dense(n_classes, relu=False)]
        return cls(input_shape, tuple(layers), n_classes)

    # -- geometry -----------------------------------------------------------------------------

    @property
    def rule(self) -> int:
        """The verdict rule this spec names (its version byte)."""
        return SPEC_VERSION

    @property
    def arch(self) -> str:
        """``"net"``: a rule-2 layer program (rule-1 specs name ``"mlp"`` or ``"cnn"``)."""
        return "net"

    @property
    def input_size(self) -> int:
        """Features per sample."""
        n = 1
        for d in self.input_shape:
            n *= d
        return n

    @property
    def input_channels(self) -> int:
        """Channels of the input requantisation (features of a rank-1 input)."""
        return self.input_shape[0]

    @property
    def tensor_shape(self) -> tuple[int, int, int]:
        """The input as ``(C, H, W)``."""
        s = self.input_shape
        return (s[0], 1, 1) if len(s) == 1 else (s[0], s[1], s[2])

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every layer with its geometry, in order."""
        return self._steps

    def n_params(self) -> int:
        """Weights and biases (what ``MAX_PARAMS`` bounds)."""
        return sum(s.params for s in self._steps)

    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        return sum(s.macs for s in self._steps)

    def weights_bytes(self) -> int:
        """Exact size of a weights blob for this spec (see :mod:`.weights`)."""
        n = 4 + 1 + 2 + len(self.to_bytes()) + 5 * self.input_channels
        for s in self._steps:
            k = s.layer.kind
            if k in ("dense", "conv"):
                out = s.out_shape[0]
                n += out * s.fan_in + 4 * out + (0 if s.last else 5 * out)
            elif k == "avgpool":
                n += 5 * s.channels
            elif k == "add":
                n += 9 * s.channels
        return n

    def _plan(self) -> tuple[Step, ...]:
        _in("n_classes", self.n_classes, 2, MAX_CLASSES)
        if len(self.input_shape) not in (1, 3):
            raise InvalidModel(f"input_shape must be (features,) or (c, h, w): {self.input_shape}")
        for i, d in enumerate(self.input_shape):
            _in(f"input_shape[{i}]", d, 1, 0xFFFF)
        if self.input_size > MAX_ACTIVATION:
            raise InvalidModel(f"input has {self.input_size} features, max {MAX_ACTIVATION}")
        if not 1 <= len(self.layers) <= MAX_LAYERS:
            raise InvalidModel(f"{len(self.layers)} layers, need 1..{MAX_LAYERS}")
        shape = self.tensor_shape
        saved: list[tuple[int, int, int]] = []
        steps: list[Step] = []
        last_i = len(self.layers) - 1
        for i, ly in enumerate(self.layers):
            steps.append(_step(i, ly, shape, saved, i == last_i))
            shape = steps[-1].out_shape
        fin = self.layers[-1]
        if fin.kind != "dense" or fin.width != self.n_classes or fin.relu:
            raise InvalidModel(f"the last layer must be dense({self.n_classes}) without ReLU")
        if saved:
            raise InvalidModel(f"{len(saved)} saved tensors are never added back")
        params = sum(s.params for s in steps)
        if params > MAX_PARAMS:
            raise InvalidModel(f"{params} parameters, max {MAX_PARAMS}")
        macs = sum(s.macs for s in steps)
        if macs > MAX_MACS:
            raise InvalidModel(f"{macs} multiply-accumulates per sample, max {MAX_MACS}")
        object.__setattr__(self, "_steps", tuple(steps))
        size = self.weights_bytes()
        if size > MAX_WEIGHTS_BYTES:
            raise InvalidModel(f"weights blob would be {size} bytes, max {MAX_WEIGHTS_BYTES}")
        return tuple(steps)

    # -- codec --------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical bytes: magic, version 2, 0, n_classes, rank, shape, layer count, layers."""
        s = self.input_shape
        return b"".join(
            [
                _HEAD.pack(_MAGIC, SPEC_VERSION, 0, self.n_classes, len(s)),
                struct.pack(f">{len(s)}HB", *s, len(self.layers)),
                *(ly.to_bytes() for ly in self.layers),
            ]
        )

    @classmethod
    def from_bytes(cls, b: bytes) -> NetSpec:
        """Decode :meth:`to_bytes` output; anything else raises :class:`InvalidModel`."""
        if not isinstance(b, (bytes, bytearray, memoryview)):
            raise InvalidModel(f"spec bytes must be bytes, got {type(b).__name__}")
        b = bytes(b)
        if len(b) > MAX_SPEC_BYTES:
            raise InvalidModel(f"spec is {len(b)} bytes, max {MAX_SPEC_BYTES}")
        if len(b) < _HEAD.size:
            raise InvalidModel(f"truncated: {len(b)} bytes")
        magic, version, reserved, n_classes, rank = _HEAD.unpack_from(b)
        if magic != _MAGIC:
            raise InvalidModel("bad magic, not a model spec")
        if version != SPEC_VERSION:
            raise InvalidModel(f"spec version {version}, this decoder reads {SPEC_VERSION}")
        if reserved != 0:
            raise InvalidModel(f"reserved field is {reserved}, must be 0")
        if rank not in (1, 3):
            raise InvalidModel(f"input rank {rank}, must be 1 or 3")
        pos = _HEAD.size
        if len(b) < pos + 2 * rank + 1:
            raise InvalidModel(f"truncated: {len(b)} bytes")
        *shape, n_layers = struct.unpack_from(f">{rank}HB", b, pos)
        pos += 2 * rank + 1
        if len(b) != pos + _LAYER.size * n_layers:
            raise InvalidModel(
                f"{len(b) - pos} bytes of layers, {n_layers} layers need {_LAYER.size * n_layers}"
            )
        kinds = {v: k for k, v in _CODE.items()}
        layers = []
        for i in range(n_layers):
            code, relu, width, kernel, stride = _LAYER.unpack_from(b, pos + _LAYER.size * i)
            kind = kinds.get(code)
            if kind is None:
                raise InvalidModel(f"layer {i}: unknown kind code {code}")
            if relu not in (0, 1):
                raise InvalidModel(f"layer {i}: relu flag {relu} is not 0 or 1")
            layers.append(Layer(kind, width, kernel, stride, bool(relu)))
        spec = cls(tuple(shape), tuple(layers), n_classes)
        if spec.to_bytes() != b:  # pragma: no cover - every field is checked above
            raise InvalidModel("spec bytes are not canonical")
        return spec


def _step(
    i: int,
    ly: Layer,
    shape: tuple[int, int, int],
    saved: list[tuple[int, int, int]],
    last: bool,
) -> Step:
    """Check one layer against the tensor it receives; return its geometry."""
    if not isinstance(ly.kind, str) or ly.kind not in _CODE:
        raise InvalidModel(f"layer {i}: unknown kind {ly.kind!r}; known: {', '.join(KINDS)}")
    for name in ("width", "kernel", "stride"):
        _in(f"layer {i} {name}", getattr(ly, name), 0, 0xFFFFFFFF if name == "width" else 0xFF)
    if not isinstance(ly.relu, bool):
        raise InvalidModel(f"layer {i}: relu must be a bool")
    if ly.relu and ly.kind not in _RELU_OK:
        raise InvalidModel(f"layer {i}: {ly.kind} takes no ReLU")
    c, h, w = shape
    k = ly.kind
    fan_in = params = macs = 0
    unused: tuple[str, ...] = ()
    if k == "dense":
        unused = ("kernel", "stride")
        width = _in(f"layer {i} (dense) width", ly.width, 1, MAX_WIDTH)
        fan_in = c * h * w
        out = (width, 1, 1)
        macs = fan_in * width
        params = macs + width
    elif k == "conv":
        oc = _in(f"layer {i} (conv) channels", ly.width, 1, MAX_CHANNELS)
        if ly.kernel not in CONV_KERNELS or ly.stride not in CONV_STRIDES:
            raise InvalidModel(
                f"layer {i}: conv kernel {ly.kernel} / stride {ly.stride} not in "
                f"{CONV_KERNELS} / {CONV_STRIDES}"
            )
        fan_in = c * ly.kernel * ly.kernel
        out = (oc, (h - 1) // ly.stride + 1, (w - 1) // ly.stride + 1)
        macs = fan_in * oc * out[1] * out[2]
        params = fan_in * oc + oc
    elif k == "maxpool":
        unused = ("width",)
        if ly.kernel not in POOL_KERNELS or ly.stride not in POOL_STRIDES:
            raise InvalidModel(
                f"layer {i}: maxpool kernel {ly.kernel} / stride {ly.stride} not in "
                f"{POOL_KERNELS} / {POOL_STRIDES}"
            )
        if h < ly.kernel or w < ly.kernel:
            raise InvalidModel(f"layer {i}: maxpool {ly.kernel} over a {h}x{w} plane")
        out = (c, (h - ly.kernel) // ly.stride + 1, (w - ly.kernel) // ly.stride + 1)
    elif k == "avgpool":
        unused = ("width", "kernel", "stride")
        out = (c, 1, 1)
    elif k == "save":
        unused = ("width", "kernel", "stride")
        if len(saved) >= MAX_SAVED:
            raise InvalidModel(f"layer {i}: more than {MAX_SAVED} saved tensors")
        saved.append(shape)
        out = shape
    else:  # add
        unused = ("width", "kernel", "stride")
        if not saved:
            raise InvalidModel(f"layer {i}: add without a saved tensor")
        other = saved.pop()
        if other != shape:
            raise InvalidModel(f"layer {i}: add of shapes {other} and {shape}")
        out = shape
    for name in unused:
        if getattr(ly, name) != 0:
            raise InvalidModel(f"layer {i}: {k} has {name}={getattr(ly, name)}, must be 0")
    if fan_in > MAX_FAN_IN:
        raise InvalidModel(f"layer {i}: fan-in {fan_in}, max {MAX_FAN_IN}")
    if out[0] * out[1] * out[2] > MAX_ACTIVATION:
        raise InvalidModel(f"layer {i}: output {out} over {MAX_ACTIVATION} elements")
    if last and k != "dense":
        raise InvalidModel(f"the last layer must be dense, got {k}")
    return Step(i, ly, shape, out, fan_in, params, macs, last)
