"""DNN claims: codecs, the quantisation rule, Numba kernel == NumPy reference, and verdicts."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazyledger.errors import LedgerError
from lazyledger.materialize import dnn
from lazyledger.materialize.dnn import InvalidBlob, InvalidModel, ModelSpec, Verdict

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MLP = ModelSpec.mlp(64, (32,), 10, input_shift=4)
CNN = ModelSpec.cnn((1, 8, 8), (4, 6), 10, input_shift=4)


def random_tensors(
    spec: ModelSpec, rng: np.random.Generator, scale: float = 0.3
) -> list[np.ndarray]:
    return [(rng.standard_normal(s) * scale).astype(np.float32) for _, s in spec.param_shapes()]


# --------------------------------------------------------------------------------------------
# Model spec


def test_spec_golden_bytes() -> None:
    assert MLP.to_bytes().hex() == "4c4c4d530101040000000a010040010020"
    assert CNN.to_bytes().hex() == "4c4c4d530102040000000a030001000800080200040006"
    assert ModelSpec.from_bytes(MLP.to_bytes()) == MLP
    assert ModelSpec.from_bytes(CNN.to_bytes()) == CNN


def test_param_shapes_follow_torch_layout() -> None:
    assert MLP.param_shapes() == [
        ("fc0.weight", (32, 64)),
        ("fc0.bias", (32,)),
        ("fc1.weight", (10, 32)),
        ("fc1.bias", (10,)),
    ]
    assert CNN.param_shapes() == [
        ("conv0.weight", (4, 1, 3, 3)),
        ("conv0.bias", (4,)),
        ("conv1.weight", (6, 4, 3, 3)),
        ("conv1.bias", (6,)),
        ("fc.weight", (10, 6 * 8 * 8)),
        ("fc.bias", (10,)),
    ]
    assert ModelSpec.mlp(3, (), 2).param_shapes() == [("fc0.weight", (2, 3)), ("fc0.bias", (2,))]


specs = st.one_of(
    st.builds(
        ModelSpec.mlp,
        st.integers(1, 300),
        st.lists(st.integers(1, 300), max_size=3),
        st.integers(2, 50),
        st.integers(0, dnn.MAX_INPUT_SHIFT),
    ),
    st.builds(
        ModelSpec.cnn,
        st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),
        st.lists(st.integers(1, 8), min_size=1, max_size=2),
        st.integers(2, 50),
        st.integers(0, dnn.MAX_INPUT_SHIFT),
    ),
)


@SETTINGS
@given(specs)
def test_spec_roundtrip(spec: ModelSpec) -> None:
    b = spec.to_bytes()
    assert len(b) <= dnn.MAX_SPEC_BYTES
    assert ModelSpec.from_bytes(b) == spec
    assert ModelSpec.from_bytes(b).to_bytes() == b


@SETTINGS
@given(st.binary(max_size=80))
def test_spec_garbage_is_typed_or_canonical(b: bytes) -> None:
    try:
        spec = ModelSpec.from_bytes(b)
    except InvalidModel:
        return
    assert spec.to_bytes() == b


@SETTINGS
@given(specs, st.data())
def test_spec_mutations(spec: ModelSpec, data: st.DataObject) -> None:
    b = spec.to_bytes()
    cut = data.draw(st.integers(0, len(b) - 1))
    with pytest.raises(InvalidModel):
        ModelSpec.from_bytes(b[:cut])
    with pytest.raises(InvalidModel, match="trailing"):
        ModelSpec.from_bytes(b + b"\x00")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ModelSpec("rnn", (4,), (), 2), "unknown arch"),
        (lambda: ModelSpec.mlp(0, (), 2), "n_inputs"),
        (lambda: ModelSpec.mlp(4, (8,), 1), "n_classes"),
        (lambda: ModelSpec.mlp(4, (True,), 2), "must be an int"),
        (lambda: ModelSpec.mlp(4, (8,) * 9, 2), "hidden layers"),
        (lambda: ModelSpec.mlp(4096, (4096, 4096), 10), "parameters"),
        (lambda: ModelSpec.mlp(4, (), 2, input_shift=16), "input_shift"),
        (lambda: ModelSpec.cnn((1, 8, 8), (), 10), "1 or 2 conv"),
        (lambda: ModelSpec.cnn((1, 8, 8), (4, 4, 4), 10), "1 or 2 conv"),
        (lambda: ModelSpec.cnn((1, 8, 33), (4,), 10), "input width"),
        (lambda: ModelSpec("cnn", (64,), (4,), 10), "input_shape"),
    ],
)
def test_bad_specs_raise(build: object, match: str) -> None:
    with pytest.raises(InvalidModel, match=match) as e:
        build()  # type: ignore[operator]
    assert isinstance(e.value, LedgerError)


def test_spec_from_bytes_bad_header() -> None:
    b = bytearray(MLP.to_bytes())
    for pos, val, match in [(0, 0x58, "magic"), (4, 2, "version"), (5, 9, "arch code")]:
        bad = bytearray(b)
        bad[pos] = val
        with pytest.raises(InvalidModel, match=match):
            ModelSpec.from_bytes(bytes(bad))
    with pytest.raises(InvalidModel, match="max"):
        ModelSpec.from_bytes(bytes(100))


# --------------------------------------------------------------------------------------------
# Dataset blobs


def test_dataset_golden_bytes() -> None:
    x = np.array([[0, 16], [-1, 32767]])
    y = np.array([1, 0])
    b = dnn.encode_dataset(x, y)
    assert b.hex() == "4c4c4453010100020000000200001000ffffff7f01000000"
    dx, dy = dnn.decode_dataset(b)
    assert dx.dtype == np.int64 and dy.dtype == np.int64
    assert (dx == x).all() and (dy == y).all()


@SETTINGS
@given(
    st.integers(1, 20),
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_dataset_roundtrip(n: int, shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(dnn.INPUT_MIN, dnn.INPUT_MAX + 1, size=(n, *shape))
    y = rng.integers(0, dnn.LABEL_MAX + 1, size=n)
    b = dnn.encode_dataset(x, y)
    dx, dy = dnn.decode_dataset(b)
    assert dx.shape == x.shape and (dx == x).all() and (dy == y).all()
    assert dnn.encode_dataset(dx, dy) == b
    for cut in (0, 5, len(b) // 2, len(b) - 1):
        with pytest.raises(InvalidBlob):
            dnn.decode_dataset(b[:cut])
    with pytest.raises(InvalidBlob):
        dnn.decode_dataset(b + b"\x00")


@SETTINGS
@given(st.binary(max_size=64))
def test_dataset_garbage_is_typed_or_canonical(b: bytes) -> None:
    try:
        x, y = dnn.decode_dataset(dnn.DATASET_MAGIC + b)
    except InvalidBlob:
        return
    assert dnn.encode_dataset(x, y) == dnn.DATASET_MAGIC + b


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((2, 3)), np.zeros(2, dtype=int), "integers"),
        (np.zeros((2, 3), dtype=int), np.zeros(3, dtype=int), "labels shape"),
        (np.zeros(3, dtype=int), np.zeros(3, dtype=int), "dims"),
        (np.zeros((0, 3), dtype=int), np.zeros(0, dtype=int), "shape"),
        (np.full((1, 3), 40000), np.zeros(1, dtype=int), "features must lie"),
        (np.zeros((1, 3), dtype=int), np.array([-1]), "labels must lie"),
    ],
)
def test_encode_dataset_rejects(x: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidBlob, match=match):
        dnn.encode_dataset(x, y)


def test_decode_dataset_rejects() -> None:
    good = dnn.encode_dataset(np.zeros((2, 3), dtype=int), np.zeros(2, dtype=int))
    with pytest.raises(InvalidBlob, match="magic"):
        dnn.decode_dataset(b"XXXX" + good[4:])
    with pytest.raises(InvalidBlob, match="version"):
        dnn.decode_dataset(good[:4] + b"\x07" + good[5:])
    with pytest.raises(InvalidBlob, match="max"):
        dnn.decode_dataset(bytes(dnn.MAX_DATASET_BYTES + 1))
    # A header announcing a huge body must fail on length, before any allocation.
    huge = dnn.DATASET_MAGIC + struct.pack(">BBHI", 1, 1, 0xFFFF, 0xFFFFFFFF)
    with pytest.raises(InvalidBlob, match="body"):
        dnn.decode_dataset(huge)
    with pytest.raises(InvalidBlob, match="expected bytes"):
        dnn.decode_dataset("not bytes")  # type: ignore[arg-type]


def test_load_dataset_checks_fit() -> None:
    blob = dnn.encode_dataset(np.zeros((2, 63), dtype=int), np.zeros(2, dtype=int))
    with pytest.raises(InvalidBlob, match="64"):
        dnn.load_dataset(MLP, blob)
    blob = dnn.encode_dataset(np.zeros((2, 8, 8), dtype=int), np.array([0, 10]))
    with pytest.raises(InvalidBlob, match="n_classes"):
        dnn.load_dataset(MLP, blob)
    x, _ = dnn.load_dataset(CNN, dnn.encode_dataset(np.zeros((2, 64), dtype=int), np.zeros(2, int)))
    assert x.shape == (2, 1, 8, 8)


def test_digits_blobs_deterministic_split() -> None:
    tr, va = dnn.digits_blobs()
    assert dnn.digits_blobs() == (tr, va)
    xt, _ = dnn.decode_dataset(tr)
    xv, yv = dnn.decode_dataset(va)
    assert xv.shape == (449, 64) and xt.shape == (1348, 64)
    assert xt.min() >= 0 and xv.max() <= 16
    from sklearn.datasets import load_digits

    d = load_digits()
    assert (xv == d.data[3::4]).all() and (yv == d.target[3::4]).all()
    with pytest.raises(InvalidModel):
        dnn.digits_blobs(0)


# --------------------------------------------------------------------------------------------
# Weights blobs


@SETTINGS
@given(specs, st.integers(0, 2**32 - 1))
def test_weights_roundtrip(spec: ModelSpec, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = random_tensors(spec, rng, float(10.0 ** rng.integers(-40, 38)))
    b = dnn.encode_weights(spec, ts)
    back = dnn.decode_weights(spec, b)
    assert all(a.dtype == np.float32 and (a == t).all() for a, t in zip(back, ts, strict=True))
    assert dnn.encode_weights(spec, back) == b
    with pytest.raises(InvalidBlob, match=r"trailing|body"):
        dnn.decode_weights(spec, b + b"\x00\x00\x00\x00")
    with pytest.raises(InvalidBlob):
        dnn.decode_weights(spec, b[: rng.integers(0, len(b))])


def test_weights_every_truncation_raises() -> None:
    spec = ModelSpec.mlp(3, (2,), 2)
    b = dnn.encode_weights(spec, random_tensors(spec, np.random.default_rng(1)))
    for cut in range(len(b)):
        with pytest.raises(InvalidBlob):
            dnn.decode_weights(spec, b[:cut])


def test_weights_rejects() -> None:
    rng = np.random.default_rng(2)
    ts = random_tensors(MLP, rng)
    with pytest.raises(InvalidBlob, match="3 tensors"):
        dnn.encode_weights(MLP, ts[:3])
    with pytest.raises(InvalidBlob, match="shape"):
        dnn.encode_weights(MLP, [ts[0].T, *ts[1:]])
    with pytest.raises(InvalidBlob, match="dtype"):
        dnn.encode_weights(MLP, [ts[0].astype(np.int32), *ts[1:]])
    for bad in (np.nan, np.inf, -np.inf, 1e300):
        t = ts[2].astype(np.float64)
        t[1, 1] = bad
        with pytest.raises(InvalidBlob, match="NaN or infinite"):
            dnn.encode_weights(MLP, [*ts[:2], t, ts[3]])
    b = dnn.encode_weights(MLP, ts)
    header = len(b) - 4 * MLP.n_params()
    nan = bytearray(b)
    nan[header + 8 : header + 12] = np.array([np.nan], dtype="<f4").tobytes()
    with pytest.raises(
        InvalidBlob, match=r"fc0\.weight has a NaN or infinite value at flat index 2"
    ):
        dnn.decode_weights(MLP, bytes(nan))
    with pytest.raises(InvalidBlob, match="another model spec"):
        dnn.decode_weights(ModelSpec.mlp(64, (32,), 10), b)
    with pytest.raises(InvalidBlob, match="magic"):
        dnn.decode_weights(MLP, b"LLDS" + b[4:])
    with pytest.raises(InvalidBlob, match="version"):
        dnn.decode_weights(MLP, b[:4] + b"\x02" + b[5:])
    with pytest.raises(InvalidBlob, match="max"):
        dnn.decode_weights(MLP, bytes(dnn.MAX_WEIGHTS_BYTES + 1))
    count_at = header - 2
    with pytest.raises(InvalidBlob, match="5 tensors"):
        dnn.decode_weights(MLP, b[:count_at] + b"\x00\x05" + b[header:])


# --------------------------------------------------------------------------------------------
# Quantisation rule


def exact_quant(w: float, k: int) -> int:
    """round-half-to-even of w * 2**k, in exact rational arithmetic."""
    return round(Fraction(w) * Fraction(2) ** k)


@SETTINGS
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=12)
)
def test_quantisation_rule_is_exact(ws: list[float]) -> None:
    spec = ModelSpec.mlp(len(ws), (), 2)
    w = np.array([ws, ws[::-1]], dtype=np.float32)
    b = np.array([ws[0], -ws[-1]], dtype=np.float32)
    qm = dnn.quantize(spec, [w, b])
    m = max(abs(v) for v in ws)
    e = math.frexp(m)[1]  # m = f * 2**e, f in [0.5, 1); frexp(0) = (0, 0)
    k = dnn.W_BITS - e
    assert qm.weights.tolist() == [exact_quant(float(v), k) for v in w.ravel()]
    assert all(abs(q) <= 2**dnn.W_BITS for q in qm.weights.tolist())
    if m:
        assert max(abs(q) for q in qm.weights.tolist()) >= 2 ** (dnn.W_BITS - 1)
    want_b = [exact_quant(float(v), k + spec.input_shift) for v in b]
    assert qm.biases.tolist() == [max(-dnn.BIAS_MAX, min(dnn.BIAS_MAX, q)) for q in want_b]


def test_quantisation_golden() -> None:
    spec = ModelSpec.mlp(2, (2,), 2)
    w0 = np.array([[0.75, 0.3], [-0.1, 0.0]], np.float32)
    qm = dnn.quantize(
        spec,
        [w0, np.zeros(2, np.float32), np.zeros((2, 2), np.float32), np.array([1.5, 0], np.float32)],
    )
    # max |w0| = 0.75 = 0.75 * 2**0 -> k = 14: 0.75 * 16384 = 12288.
    assert qm.weights[:4].tolist() == [12288, round(float(np.float32(0.3)) * 16384), -1638, 0]
    # An all-zero tensor gets k = W_BITS; its bias uses 2**(14 + 10).
    assert qm.biases[2:].tolist() == [int(1.5 * 2**24), 0]
    assert qm.plan[:, 7].tolist() == [14 + 0 - 10, 14 + 10 - 10]


@SETTINGS
@given(st.integers(-(2**56), 2**56), st.integers(-130, 170))
def test_requant_matches_exact(acc: int, shift: int) -> None:
    want = dnn._requant_exact(acc, shift)
    assert dnn._requant_py(acc, shift) == want
    assert dnn._requant(acc, shift) == want
    assert 0 <= want <= dnn.ACT_MAX


# --------------------------------------------------------------------------------------------
# Kernel == reference


def test_kernel_golden_hand_computed() -> None:
    spec = ModelSpec.mlp(2, (2,), 2)
    w0 = np.array([[1, 0], [0, -1]], np.float32)  # k = 13: q = +-8192
    b0 = np.array([0.5, 0], np.float32)  # 0.5 * 2**13 = 4096
    w1 = np.array([[1, 0], [-1, 0]], np.float32)
    b1 = np.array([0, 4], np.float32)  # 4 * 2**(13 + 10)
    blob = dnn.encode_weights(spec, [w0, b0, w1, b1])
    qm = dnn.quantize(spec, dnn.decode_weights(spec, blob))
    assert qm.weights.tolist() == [8192, 0, 0, -8192, 8192, 0, -8192, 0]
    assert qm.biases.tolist() == [4096, 0, 0, 4 << 23]
    # x=(3,5): hidden = (28672 + 4) >> 3 = 3584 (3.5 at 10 bits) -> logits (3.5, 0.5) -> 0.
    # x=(0,5): hidden = 512 (0.5) -> logits (0.5, 3.5) -> 1.
    x = np.array([[3, 5], [0, 5]])
    assert dnn.infer(spec, blob, x).tolist() == [0, 1]
    assert dnn.infer_reference(spec, blob, x).tolist() == [0, 1]
    # Equal logits: the lowest index wins.
    tie = dnn.encode_weights(spec, [w0, b0, np.ones((2, 2), np.float32), np.zeros(2, np.float32)])
    assert dnn.infer(spec, tie, x).tolist() == [0, 0]


MAGNITUDES = [0.0, 1e-45, 1e-38, 1e-20, 1e-3, 0.3, 1.0, 7.0, 1e3, 1e20, 3e38]


def adversarial_tensors(spec: ModelSpec, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _, shape in spec.param_shapes():
        mag = MAGNITUDES[rng.integers(len(MAGNITUDES))]
        t = rng.standard_normal(shape) * mag
        if rng.integers(3) == 0:  # mix in a few extreme values
            flat = t.reshape(-1)
            flat[rng.integers(flat.size)] = MAGNITUDES[rng.integers(len(MAGNITUDES))]
        t = np.clip(t, -3.4e38, 3.4e38).astype(np.float32)
        out.append(t)
    return out


def random_inputs(spec: ModelSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return rng.integers(0, 17, size=(n, *spec.input_shape))
    if kind == 1:
        return rng.choice([dnn.INPUT_MIN, 0, dnn.INPUT_MAX], size=(n, *spec.input_shape))
    return rng.integers(dnn.INPUT_MIN, dnn.INPUT_MAX + 1, size=(n, *spec.input_shape))


small_specs = st.one_of(
    st.builds(
        ModelSpec.mlp,
        st.integers(1, 20),
        st.lists(st.integers(1, 12), max_size=3),
        st.integers(2, 6),
        st.integers(0, dnn.MAX_INPUT_SHIFT),
    ),
    st.builds(
        ModelSpec.cnn,
        st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
        st.lists(st.integers(1, 4), min_size=1, max_size=2),
        st.integers(2, 6),
        st.integers(0, dnn.MAX_INPUT_SHIFT),
    ),
)


@settings(max_examples=60, deadline=None)
@given(small_specs, st.integers(0, 2**32 - 1), st.booleans())
def test_kernel_equals_reference(spec: ModelSpec, seed: int, adversarial: bool) -> None:
    rng = np.random.default_rng(seed)
    ts = adversarial_tensors(spec, rng) if adversarial else random_tensors(spec, rng)
    qm = dnn.quantize(spec, ts)
    x = random_inputs(spec, rng, int(rng.integers(1, 70)))  # batches of 64 plus a remainder
    assert dnn.run_kernel(qm, x).tolist() == dnn.run_reference(qm, x).tolist()


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["mlp", "cnn"])
def test_kernel_equals_reference_on_digits(spec: ModelSpec) -> None:
    _, va = dnn.digits_blobs()
    x, _ = dnn.load_dataset(spec, va)
    x = x[:120]
    for seed in range(3):
        blob = dnn.encode_weights(spec, random_tensors(spec, np.random.default_rng(seed)))
        assert (dnn.infer(spec, blob, x) == dnn.infer_reference(spec, blob, x)).all()


def test_infer_rejects_bad_inputs() -> None:
    blob = dnn.encode_weights(MLP, random_tensors(MLP, np.random.default_rng(0)))
    with pytest.raises(InvalidBlob, match="integers"):
        dnn.infer(MLP, blob, np.zeros((2, 64)))
    with pytest.raises(InvalidBlob, match="input size"):
        dnn.infer(MLP, blob, np.zeros((2, 63), dtype=int))
    with pytest.raises(InvalidBlob, match="must lie"):
        dnn.infer(MLP, blob, np.full((2, 64), 1 << 20))
    with pytest.raises(InvalidBlob, match="another model spec"):
        dnn.infer(CNN, blob, np.zeros((2, 64), dtype=int))


# --------------------------------------------------------------------------------------------
# Claims


@pytest.fixture(scope="module")
def digits() -> tuple[bytes, bytes]:
    return dnn.digits_blobs()


@pytest.fixture(scope="module")
def trained_mlp(digits: tuple[bytes, bytes]) -> bytes:
    train = pytest.importorskip("lazyledger.materialize.train")
    return bytes(train.train(MLP, digits[0], epochs=15, seed=0, device="cpu"))


def test_trained_mlp_passes(trained_mlp: bytes, digits: tuple[bytes, bytes]) -> None:
    v = dnn.check_claim(MLP, trained_mlp, digits[1], 900)
    assert v.passed and v.total == 449 and v.correct * 1000 >= 900 * 449, v
    assert v.reason == f"{v.correct}/449 correct: {v.correct * 1000} >= 900*449"
    assert all(isinstance(f, int) for f in (v.correct, v.total))
    again = [dnn.check_claim(MLP, trained_mlp, digits[1], 900) for _ in range(3)]
    assert all(a == v for a in again)
    x, _ = dnn.load_dataset(MLP, digits[1])
    assert (dnn.infer(MLP, trained_mlp, x) == dnn.infer_reference(MLP, trained_mlp, x)).all()


def test_torch_model_matches_kernel(trained_mlp: bytes, digits: tuple[bytes, bytes]) -> None:
    """The float torch model and the integer kernel compute the same function, up to rounding."""
    import torch

    from lazyledger.materialize import train

    model = train.build_torch_model(MLP)
    tensors = dnn.decode_weights(MLP, trained_mlp)
    with torch.no_grad():
        for (name, _), t in zip(MLP.param_shapes(), tensors, strict=True):
            dict(model.named_parameters())[name].copy_(torch.from_numpy(t))
    assert train.export_weights(MLP, model) == trained_mlp
    x, _ = dnn.load_dataset(MLP, digits[1])
    agree = int((train.torch_predict(model, x) == dnn.infer(MLP, trained_mlp, x)).sum())
    assert agree * 100 >= 98 * x.shape[0]


def test_untrained_and_tampered_fail(trained_mlp: bytes, digits: tuple[bytes, bytes]) -> None:
    train = pytest.importorskip("lazyledger.materialize.train")
    val = digits[1]
    untrained = train.train(MLP, digits[0], epochs=0, seed=0, device="cpu")
    v = dnn.check_claim(MLP, untrained, val, 900)
    assert not v.passed and v.total == 449 and v.reason.endswith("< 900*449")
    ts = dnn.decode_weights(MLP, trained_mlp)
    negated = dnn.encode_weights(MLP, [*ts[:2], -ts[2], ts[3]])
    assert not dnn.check_claim(MLP, negated, val, 900).passed
    rng = np.random.default_rng(0)
    shuffled = dnn.encode_weights(MLP, [rng.permutation(t.ravel()).reshape(t.shape) for t in ts])
    assert not dnn.check_claim(MLP, shuffled, val, 900).passed
    # A malformed claim is a failing verdict with a reason, never an exception.
    header = len(trained_mlp) - 4 * MLP.n_params()
    nan = bytearray(trained_mlp)
    nan[header : header + 4] = b"\x00\x00\xc0\x7f"
    for bad, why in [
        (bytes(nan), "NaN"),
        (trained_mlp[:-1], "body"),
        (trained_mlp + b"\x00", "body"),
        (b"", "truncated"),
        (b"\x00" * (dnn.MAX_WEIGHTS_BYTES + 1), "max"),
        (dnn.encode_weights(CNN, random_tensors(CNN, rng)), "another model spec"),
    ]:
        v = dnn.check_claim(MLP, bad, val, 900)
        assert v == Verdict(False, 0, 449, v.reason) and why in v.reason
        assert v.reason.startswith("rejected claim: invalid weights blob:")
        with pytest.raises(InvalidBlob):
            dnn.decode_weights(MLP, bad)


def test_threshold_edges(trained_mlp: bytes, digits: tuple[bytes, bytes]) -> None:
    v = dnn.check_claim(MLP, trained_mlp, digits[1], 0)
    exact = (v.correct * 1000) // v.total  # largest threshold that still passes
    assert dnn.check_claim(MLP, trained_mlp, digits[1], exact).passed
    if exact < 1000:
        assert not dnn.check_claim(MLP, trained_mlp, digits[1], exact + 1).passed
    for bad in (-1, 1001, True, 0.9):
        with pytest.raises(InvalidModel, match="threshold_permille"):
            dnn.check_claim(MLP, trained_mlp, digits[1], bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidBlob):
        dnn.check_claim(MLP, trained_mlp, b"junk", 900)
    with pytest.raises(InvalidBlob):
        dnn.check_claim(MLP, trained_mlp, digits[0][:-1], 900)


def test_verdict_independent_of_torch_threads(digits: tuple[bytes, bytes]) -> None:
    torch = pytest.importorskip("torch")
    from lazyledger.materialize import train

    before = torch.get_num_threads()
    verdicts: dict[int, list[Verdict]] = {}
    blobs: dict[int, bytes] = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            blobs[threads] = train.train(MLP, digits[0], epochs=10, seed=1, device="cpu")
        for threads in (2, 1):
            torch.set_num_threads(threads)
            verdicts[threads] = [dnn.check_claim(MLP, b, digits[1], 900) for b in blobs.values()]
    finally:
        torch.set_num_threads(before)
    assert verdicts[1] == verdicts[2]
    assert all(v.passed for v in verdicts[1])


def test_trained_cnn_passes(digits: tuple[bytes, bytes]) -> None:
    train = pytest.importorskip("lazyledger.materialize.train")
    spec = ModelSpec.cnn((1, 8, 8), (8,), 10, input_shift=4)
    blob = train.train(spec, digits[0], epochs=8, seed=0, device="cpu")
    v = dnn.check_claim(spec, blob, digits[1], 900)
    assert v.passed, v
    x, _ = dnn.load_dataset(spec, digits[1])
    x = x[:100]
    assert (dnn.infer(spec, blob, x) == dnn.infer_reference(spec, blob, x)).all()


def test_dnn_module_does_not_import_torch() -> None:
    code = "import sys, lazyledger.materialize.dnn; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
