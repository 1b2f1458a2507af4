"""Rule-2 weights blobs: canonical bytes, every defect typed, ranges enforced, and decoding that
neither copies the weights nor allocates anything the size of a layer."""

from __future__ import annotations

import mmap
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qnet_cases import random_arrays, random_blob, random_spec

from lazyledger.materialize import dnn, qnet
from lazyledger.materialize.dnn import InvalidBlob
from lazyledger.materialize.qnet import Layer, NetSpec
from lazyledger.materialize.qnet.export import synthetic_weights
from lazyledger.materialize.qnet.spec import BIAS_MAX, MAX_WEIGHTS_BYTES, MULT_MAX, SHIFT_MAX
from lazyledger.materialize.qnet.weights import (
    blob_parts,
    decode_weights,
    encode_weights,
    net_parts,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TINY = NetSpec.mlp(3, (2,), 2)


def tiny_arrays() -> list[np.ndarray]:
    return [
        np.array([1, 2, 3]),  # input.mult
        np.array([0, 1, 2]),  # input.shift
        np.array([[1, -1, 0], [127, -127, 5]]),  # L0.weight
        np.array([-(2**30), 2**30]),  # L0.bias
        np.array([2**31 - 1, 0]),  # L0.mult
        np.array([62, 0]),  # L0.shift
        np.array([[1, 2], [3, 4]]),  # L1.weight
        np.array([0, -1]),  # L1.bias
    ]


def test_parts_and_golden_bytes() -> None:
    assert [(p.name, p.shape, p.kind) for p in blob_parts(TINY)] == [
        ("input.mult", (3,), "mult"),
        ("input.shift", (3,), "shift"),
        ("L0.weight", (2, 3), "weight"),
        ("L0.bias", (2,), "bias"),
        ("L0.mult", (2,), "mult"),
        ("L0.shift", (2,), "shift"),
        ("L1.weight", (2, 2), "weight"),
        ("L1.bias", (2,), "bias"),
    ]
    b = encode_weights(TINY, tiny_arrays())
    sb = TINY.to_bytes()
    assert b[: 7 + len(sb)] == b"LLWT\x02" + struct.pack(">H", len(sb)) + sb
    assert b[7 + len(sb) :].hex() == (
        "010000000200000003000000"  # input.mult u32 LE
        "000102"  # input.shift
        "01ff007f8105"  # L0.weight int8
        "000000c000000040"  # L0.bias int32 LE
        "ffffff7f00000000"  # L0.mult
        "3e00"  # L0.shift
        "01020304"  # L1.weight
        "00000000ffffffff"  # L1.bias
    )
    assert len(b) == TINY.weights_bytes()
    net = decode_weights(TINY, b)
    assert [a.tolist() for a in net_parts(net)] == [a.tolist() for a in tiny_arrays()]


def test_conv_parts_use_torch_layout() -> None:
    spec = NetSpec(
        (2, 4, 4),
        (Layer.conv(3, 5), Layer.avgpool(), Layer.save(), Layer.add(), Layer.dense(2, relu=False)),
        2,
    )
    shapes = {p.name: p.shape for p in blob_parts(spec)}
    assert shapes["L0.weight"] == (3, 2, 5, 5)
    assert shapes["L1.mult"] == (3,) and shapes["L3.mult_saved"] == (3,)
    assert "L2.mult" not in shapes and shapes["L4.weight"] == (2, 3)
    net = decode_weights(spec, random_blob(spec, 0))
    assert net.layers[0].weight is not None and net.layers[0].weight.shape == (3, 50)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_roundtrip(seed: int, adversarial: bool) -> None:
    rng = np.random.default_rng(seed)
    spec = random_spec(rng)
    arrays = random_arrays(spec, rng, adversarial)
    b = encode_weights(spec, arrays)
    assert len(b) == spec.weights_bytes()
    back = net_parts(decode_weights(spec, b))
    assert all((x == np.asarray(y)).all() for x, y in zip(back, arrays, strict=True))
    assert encode_weights(spec, back) == b
    assert decode_weights(spec, bytearray(b)) is not None
    assert isinstance(dnn.decode_weights(spec, b), qnet.QNet)


def test_every_truncation_and_extension_raises() -> None:
    b = encode_weights(TINY, tiny_arrays())
    for cut in range(len(b)):
        with pytest.raises(InvalidBlob):
            decode_weights(TINY, b[:cut])
    with pytest.raises(InvalidBlob, match="spec wants"):
        decode_weights(TINY, b + b"\x00")


def test_decode_rejects() -> None:
    b = encode_weights(TINY, tiny_arrays())
    body = 7 + len(TINY.to_bytes())
    cases: list[tuple[bytes, str]] = [
        (b"LLWX" + b[4:], "magic"),
        (b[:4] + b"\x01" + b[5:], "version 1"),
        (
            encode_weights(
                NetSpec.mlp(3, (2,), 3), [*tiny_arrays()[:6], np.ones((3, 2), int), np.ones(3, int)]
            ),
            "another model spec",
        ),
        (bytes(MAX_WEIGHTS_BYTES + 1), "max"),
    ]
    offsets, pos = {}, body
    for p in blob_parts(TINY):
        offsets[p.name] = pos
        pos += p.size * {"weight": 1, "bias": 4, "mult": 4, "shift": 1}[p.kind]

    def patched(name: str, index: int, raw: bytes) -> bytes:
        size = len(raw)
        o = offsets[name] + index * size
        return b[:o] + raw + b[o + size :]

    cases += [
        (patched("L0.weight", 4, b"\x80"), "L0.weight holds -128 at flat index 4"),
        (patched("L1.weight", 3, b"\x80"), "L1.weight holds -128 at flat index 3"),
        (
            patched("L0.bias", 1, struct.pack("<i", BIAS_MAX + 1)),
            r"L0.bias\[1\]=1073741825 is outside",
        ),
        (patched("L1.bias", 0, struct.pack("<i", -BIAS_MAX - 1)), r"L1.bias\[0\]"),
        (patched("input.mult", 2, struct.pack("<I", MULT_MAX + 1)), r"input.mult\[2\]=2147483648"),
        (patched("L0.shift", 1, bytes([SHIFT_MAX + 1])), r"L0.shift\[1\]=63"),
    ]
    for bad, match in cases:
        with pytest.raises(InvalidBlob, match=match):
            decode_weights(TINY, bad)
    with pytest.raises(InvalidBlob, match="expected bytes"):
        decode_weights(TINY, "LLWT")
    v1 = dnn.encode_weights(
        dnn.ModelSpec.mlp(3, (2,), 2),
        [
            np.zeros((2, 3), np.float32),
            np.zeros(2, np.float32),
            np.zeros((2, 2), np.float32),
            np.zeros(2, np.float32),
        ],
    )
    with pytest.raises(InvalidBlob, match="version 1"):
        decode_weights(TINY, v1)


def test_encode_rejects() -> None:
    good = tiny_arrays()
    for i, bad, match in [
        (2, np.array([[1, -128, 0], [0, 0, 0]]), "L0.weight must lie in -127..127"),
        (3, np.array([0, BIAS_MAX + 1]), "L0.bias must lie"),
        (4, np.array([-1, 0]), "L0.mult must lie"),
        (5, np.array([63, 0]), "L0.shift must lie"),
        (2, np.zeros((3, 2), dtype=int), "shape"),
        (2, np.zeros((2, 3)), "dtype"),
    ]:
        with pytest.raises(InvalidBlob, match=match):
            encode_weights(TINY, [*good[:i], bad, *good[i + 1 :]])
    with pytest.raises(InvalidBlob, match="7 arrays"):
        encode_weights(TINY, good[:7])


def test_weights_are_views_of_the_blob(tmp_path: Path) -> None:
    spec = NetSpec.mlp(64, (32,), 10)
    b = random_blob(spec, 1)
    net = decode_weights(spec, b)
    w = net.layers[0].weight
    assert w is not None and not w.flags.writeable and not w.flags.owndata
    assert np.shares_memory(w, np.frombuffer(b, dtype=np.int8))
    # an mmap'ed file decodes the same way: pages are read as the kernel touches them
    path = tmp_path / "w.bin"
    path.write_bytes(b)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        x = np.random.default_rng(0).integers(0, 17, (5, 64))
        got = qnet.classes(decode_weights(spec, mm), x, "numba")
        assert got.tolist() == qnet.classes(net, x, "numpy").tolist()


@pytest.fixture(scope="module")
def big() -> tuple[NetSpec, bytes]:
    """A 50M-parameter MLP (a 50 MB blob): big enough that a copy would show."""
    spec = NetSpec.mlp(4096, (4096, 4096, 4096), 10)
    assert spec.n_params() > 50_000_000
    return spec, synthetic_weights(spec, seed=3)


def test_large_blob_decodes_and_checks_without_copies(big: tuple[NetSpec, bytes]) -> None:
    spec, blob = big
    x = np.random.default_rng(0).integers(0, 17, (8, 4096))
    val = dnn.encode_dataset(x, np.arange(8) % 10)
    dnn.check_claim(spec, blob, val, 0, backend="numba")  # compile outside the measurement
    tracemalloc.start()
    try:
        net = decode_weights(spec, blob)
        _, peak_decode = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        v = dnn.check_claim(spec, blob, val, 0, backend="numba")
        _, peak_check = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(blob) > 50_000_000
    assert peak_decode < 1 << 20, peak_decode  # small per-channel arrays only
    assert peak_check < 4 << 20, peak_check  # activations of 8 samples, no weights copy
    assert v.total == 8
    assert net.layers[1].weight is not None and np.shares_memory(
        net.layers[1].weight, np.frombuffer(blob, np.int8)
    )
