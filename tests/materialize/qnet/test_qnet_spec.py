"""Rule-2 specs: canonical bytes, limits (checked before anything is allocated), geometry, and the
arithmetic bounds the rule relies on."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qnet_cases import random_spec

from lazyledger.errors import LedgerError
from lazyledger.materialize import dnn
from lazyledger.materialize.dnn import InvalidModel, ModelSpec
from lazyledger.materialize.qnet import Layer, NetSpec
from lazyledger.materialize.qnet import spec as qs

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MLP = NetSpec.mlp(64, (32,), 10)
RES = NetSpec.resnet((1, 8, 8), [(4, 1), (8, 1)], 10, pool=True)


def test_bounds_of_the_rule() -> None:
    """The int32 accumulator and the int64 requantisation cannot overflow (docs/verdict-v2.md)."""
    assert qs.ACC_MAX == qs.MAX_FAN_IN * 127 * 127 + qs.BIAS_MAX == 2_130_771_968
    assert qs.ACC_MAX < 2**31 - 1
    # requantisation: |v * M| + 2**(s-1) for the largest v of any stage
    add_max = 2 * qs.Q_MAX * qs.MULT_MAX  # add: a * Ma + r * Mr
    pool_max = qs.Q_MAX * qs.MAX_ACTIVATION  # avgpool: a plane sum
    input_max = 2**15 * qs.MULT_MAX  # input: int16 features
    for v in (qs.ACC_MAX * qs.MULT_MAX, add_max, pool_max * qs.MULT_MAX, input_max):
        assert v + 2 ** (qs.SHIFT_MAX - 1) < 2**63
    assert add_max < 2**40


def test_golden_bytes() -> None:
    assert MLP.to_bytes().hex() == ("4c4c4d530200000a01004002010100000020000001000000000a0000")
    assert NetSpec.from_bytes(MLP.to_bytes()) == MLP
    assert NetSpec.from_bytes(RES.to_bytes()) == RES
    assert dnn.decode_spec(MLP.to_bytes()) == MLP
    assert MLP.rule == 2 and ModelSpec.mlp(4, (), 2).rule == 1


def test_decode_spec_reads_both_rules() -> None:
    v1 = ModelSpec.mlp(64, (32,), 10, input_shift=4)
    assert dnn.decode_spec(v1.to_bytes()) == v1
    for bad, match in [
        (b"LLMS\x03" + bytes(10), "version 3"),
        (b"XXXX\x02", "magic"),
        (b"", "truncated"),
    ]:
        with pytest.raises(InvalidModel, match=match):
            dnn.decode_spec(bad)
    with pytest.raises(InvalidModel, match="version"):  # rule 1's decoder names what it reads
        ModelSpec.from_bytes(MLP.to_bytes())


def test_geometry() -> None:
    spec = NetSpec(
        (3, 9, 7),
        (
            Layer.conv(8, 3, 2),
            Layer.maxpool(2, 1),
            Layer.save(),
            Layer.conv(8, 5),
            Layer.add(),
            Layer.conv(4, 1),
            Layer.avgpool(),
            Layer.dense(5, relu=False),
        ),
        5,
    )
    shapes = [s.out_shape for s in spec.steps]
    assert shapes == [
        (8, 5, 4),
        (8, 4, 3),
        (8, 4, 3),
        (8, 4, 3),
        (8, 4, 3),
        (4, 4, 3),
        (4, 1, 1),
        (5, 1, 1),
    ]
    assert [s.fan_in for s in spec.steps] == [27, 0, 0, 200, 0, 8, 0, 4]
    assert spec.n_params() == (27 * 8 + 8) + (200 * 8 + 8) + (8 * 4 + 4) + (4 * 5 + 5)
    assert spec.macs() == 27 * 8 * 20 + 200 * 8 * 12 + 8 * 4 * 12 + 4 * 5
    assert RES.steps[1].out_shape == (4, 4, 4)  # 8x8 stem, then a 2x2 max pool
    assert NetSpec.mlp(3, (), 2).steps[0].last


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_roundtrip(seed: int) -> None:
    spec = random_spec(np.random.default_rng(seed))
    b = spec.to_bytes()
    assert len(b) <= qs.MAX_SPEC_BYTES
    assert NetSpec.from_bytes(b) == spec == dnn.decode_spec(b)
    for cut in range(len(b)):
        with pytest.raises(InvalidModel):
            NetSpec.from_bytes(b[:cut])
    with pytest.raises(InvalidModel):
        NetSpec.from_bytes(b + b"\x00")


@SETTINGS
@given(st.binary(max_size=60))
def test_garbage_is_typed_or_canonical(tail: bytes) -> None:
    b = b"LLMS\x02" + tail
    try:
        spec = NetSpec.from_bytes(b)
    except InvalidModel:
        return
    assert spec.to_bytes() == b


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.data())
def test_byte_flips_are_typed_or_canonical(seed: int, data: st.DataObject) -> None:
    b = bytearray(random_spec(np.random.default_rng(seed)).to_bytes())
    pos = data.draw(st.integers(4, len(b) - 1))
    b[pos] = data.draw(st.integers(0, 255))
    try:
        spec = NetSpec.from_bytes(bytes(b))
    except InvalidModel:
        return
    assert spec.to_bytes() == bytes(b)


def _dense_to(n: int, layers: tuple[Layer, ...] = ()) -> tuple[Layer, ...]:
    return (*layers, Layer.dense(n, relu=False))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: NetSpec((4,), (Layer.dense(3),), 3), "last layer"),
        (lambda: NetSpec((4,), (Layer.dense(2, relu=False),), 3), "last layer"),
        (lambda: NetSpec((4,), (), 3), "layers"),
        (lambda: NetSpec((4,), (Layer.dense(2, relu=False),) * 65, 2), "layers"),
        (lambda: NetSpec((4,), _dense_to(2, (Layer.save(),)), 2), "never added"),
        (lambda: NetSpec((4,), _dense_to(2, (Layer.add(),)), 2), "without a saved"),
        (
            lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.save(), Layer.conv(2), Layer.add())), 2),
            "add of shapes",
        ),
        (
            lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.save(),) * 5 + (Layer.add(),) * 5), 2),
            "saved tensors",
        ),
        (lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.conv(2, 4),)), 2), "conv kernel"),
        (lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.conv(2, 3, 3),)), 2), "conv kernel"),
        (lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.conv(5000),)), 2), "channels"),
        (lambda: NetSpec((1, 2, 4), _dense_to(2, (Layer.maxpool(3),)), 2), "maxpool 3 over"),
        (lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer.maxpool(4),)), 2), "maxpool kernel"),
        (
            lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer("maxpool", 0, 2, 2, True),)), 2),
            "no ReLU",
        ),
        (lambda: NetSpec((1, 4, 4), _dense_to(2, (Layer("save", 1),)), 2), "width=1"),
        (lambda: NetSpec((4,), (Layer("dense", 2, 1, 0),), 2), "kernel=1"),
        (lambda: NetSpec((4,), (Layer("gelu", 2),), 2), "unknown kind"),
        (lambda: NetSpec((4,), (Layer("dense", 2, relu=1),), 2), "bool"),  # type: ignore[arg-type]
        (lambda: NetSpec((4,), (Layer.dense(True),), 2), "must be an int"),  # type: ignore[arg-type]
        (lambda: NetSpec((4, 4), _dense_to(2), 2), "input_shape"),
        (lambda: NetSpec((0,), _dense_to(2), 2), "input_shape"),
        (lambda: NetSpec((4,), _dense_to(1), 1), "n_classes"),
        (lambda: NetSpec((4,), _dense_to(5000), 5000), "n_classes"),
        (lambda: NetSpec((65535, 65), _dense_to(2), 2), "input_shape"),
        (lambda: NetSpec((64, 256, 257), _dense_to(2), 2), "features"),
        (lambda: NetSpec((16, 64, 65), _dense_to(2), 2), "fan-in"),
        (lambda: NetSpec((60000,), _dense_to(2, (Layer.dense(3000),)), 2), "parameters"),
        (lambda: NetSpec((4,), _dense_to(2, (Layer.dense(70000),)), 2), "width"),
        (lambda: NetSpec((1, 2048, 2048), _dense_to(2, (Layer.conv(4),)), 2), "elements"),
        (
            lambda: NetSpec((512, 64, 64), _dense_to(2, (Layer.conv(1024), Layer.avgpool())), 2),
            "multiply-accumulates",
        ),
        (lambda: NetSpec((4,), [1, 2], 2), "sequence of Layer"),  # type: ignore[list-item]
    ],
)
def test_bad_specs_raise(build: object, match: str) -> None:
    with pytest.raises(InvalidModel, match=match) as e:
        build()  # type: ignore[operator]
    assert isinstance(e.value, LedgerError)


def test_from_bytes_rejects_header_defects() -> None:
    b = MLP.to_bytes()
    for pos, val, match in [
        (0, 0x58, "magic"),
        (5, 1, "reserved"),
        (8, 2, "rank"),
        (12, 9, "kind code"),
        (13, 2, "relu flag"),
        (18, 9, "kernel=9"),
    ]:
        bad = bytearray(b)
        bad[pos] = val
        with pytest.raises(InvalidModel, match=match):
            NetSpec.from_bytes(bytes(bad))
    with pytest.raises(InvalidModel, match="max"):
        NetSpec.from_bytes(b"LLMS\x02" + bytes(2000))
    with pytest.raises(InvalidModel, match="must be bytes"):
        NetSpec.from_bytes("LLMS")  # type: ignore[arg-type]


def test_max_params_bound_is_accepted_without_allocating() -> None:
    """A 2**27-parameter spec decodes (and its 2**27-byte blob size is known) from its few bytes."""
    big = NetSpec((65535,), (Layer.dense(2047), Layer.dense(2, relu=False)), 2)
    assert qs.MAX_PARAMS - 2**20 < big.n_params() <= qs.MAX_PARAMS
    raw = big.to_bytes()
    tracemalloc.start()
    try:
        spec = dnn.decode_spec(raw)
        size = spec.weights_bytes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert spec == big and peak < 1 << 16
    assert big.n_params() < size <= qs.MAX_WEIGHTS_BYTES
    with pytest.raises(InvalidModel, match="parameters"):
        NetSpec.mlp(65535, (2048,), 2)
    # fan-in limit: exactly 2**16 products per accumulator is allowed
    NetSpec((16, 64, 64), (Layer.dense(4), Layer.dense(2, relu=False)), 2)
    with pytest.raises(InvalidModel, match="fan-in"):
        NetSpec((16, 64, 65), (Layer.dense(4), Layer.dense(2, relu=False)), 2)


def test_resnet_constructor() -> None:
    spec = NetSpec.resnet((3, 32, 32), [(16, 2), (32, 2)], 10)
    kinds = [ly.kind for ly in spec.layers]
    assert kinds[:5] == ["conv", "save", "conv", "conv", "add"]
    assert kinds.count("add") == 4 and kinds[-2:] == ["avgpool", "dense"]
    assert spec.steps[-3].out_shape == (32, 16, 16)
    with pytest.raises(InvalidModel, match="stage"):
        NetSpec.resnet((3, 8, 8), [], 10)
