"""One conformance suite for every rule-2 backend: the NumPy twin, Numba and torch (on the CPU
here; on CUDA where a GPU is present) give the same logits, bit for bit, at every thread count, on
random and adversarial networks, at the overflow bound, and on ties."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qnet_cases import random_blob, random_inputs, random_spec

from lazyledger.materialize import dnn, qnet
from lazyledger.materialize.qnet import BackendUnavailable, Layer, NetSpec, twin
from lazyledger.materialize.qnet import kernel as qk
from lazyledger.materialize.qnet.spec import ACC_MAX, BIAS_MAX, MULT_MAX, Q_MAX, SHIFT_MAX
from lazyledger.materialize.qnet.weights import QNet, blob_parts, decode_weights, encode_weights

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = ["numba", "torch-cpu"] + (["torch-cuda"] if torch.cuda.is_available() else [])


def all_logits(net: QNet, x: np.ndarray) -> dict[str, np.ndarray]:
    return {b: qnet.logits(net, x, b) for b in ["numpy", *FAST]}


def assert_same(out: dict[str, np.ndarray]) -> np.ndarray:
    ref = out["numpy"]
    for name, got in out.items():
        assert got.dtype == np.int32 and got.shape == ref.shape, name
        assert np.array_equal(got, ref), f"{name} differs from the NumPy twin"
    return ref


# --------------------------------------------------------------------------------------------
# Requantisation


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-ACC_MAX, ACC_MAX) | st.sampled_from([-ACC_MAX, ACC_MAX, 0, -1, 1]),
    st.integers(0, MULT_MAX) | st.sampled_from([0, 1, MULT_MAX]),
    st.integers(0, SHIFT_MAX),
    st.booleans(),
)
def test_requant_matches_python_ints(v: int, m: int, s: int, relu: bool) -> None:
    want = twin.requant_exact(v, m, s, relu)
    assert -Q_MAX <= want <= Q_MAX
    got = twin.requant(np.array([v], np.int64), np.array([m], np.int64), np.array([s]), relu)
    assert int(got[0]) == want
    assert (
        int(qk._rq(np.int64(v), np.int64(m), np.int64(s), np.int64(0 if relu else -Q_MAX))) == want
    )
    from lazyledger.materialize.qnet.torch_backend import _rq

    t = _rq(torch.tensor([v], dtype=torch.int64), torch.tensor([m]), torch.tensor([s]), relu)
    assert int(t[0]) == want


def test_requant_rounds_half_up_and_saturates() -> None:
    r = twin.requant_exact
    assert [r(v, 1, 1, False) for v in (-3, -2, -1, 1, 2, 3)] == [-1, -1, 0, 1, 1, 2]
    assert r(10**9, MULT_MAX, 0, False) == Q_MAX and r(-(10**9), MULT_MAX, 0, False) == -Q_MAX
    assert r(-5, 1, 0, True) == 0 and r(5, 0, 0, False) == 0
    assert r(ACC_MAX, MULT_MAX, SHIFT_MAX, False) == 1  # ~0.99 rounds up


# --------------------------------------------------------------------------------------------
# Conformance


def golden_net() -> tuple[NetSpec, bytes]:
    spec = NetSpec((2,), (Layer.dense(2, relu=False), Layer.dense(2, relu=False)), 2)
    arrays = [
        np.array([1, 3]),  # input.mult
        np.array([0, 1]),  # input.shift
        np.array([[10, 20], [-7, 1]]),
        np.array([6, -3]),
        np.array([3, 1]),
        np.array([2, 3]),
        np.array([[1, 2], [0, -10]]),
        np.array([0, 0]),
    ]
    return spec, encode_weights(spec, arrays)


def test_golden_hand_computed() -> None:
    spec, blob = golden_net()
    x = np.array([[4, 3], [32767, -32768]])
    # sample 0: input (4, (9 + 1) >> 1 = 5); acc (6 + 40 + 100, -3 - 28 + 5) = (146, -26);
    #   hidden ((438 + 2) >> 2, (-26 + 4) >> 3) = (110, -3); logits (110 - 6, 30) = (104, 30).
    # sample 1: input (127, -127) after clamping; acc (-1264, -1019) -> hidden (-127, -127);
    #   logits (-127 - 254, 1270) = (-381, 1270).
    out = assert_same(all_logits(decode_weights(spec, blob), x))
    assert out.tolist() == [[104, 30], [-381, 1270]]
    for b in ["numpy", *FAST]:
        assert dnn.infer(spec, blob, x, backend=b).tolist() == [0, 1]


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_backends_agree_on_random_networks(seed: int, adversarial: bool) -> None:
    rng = np.random.default_rng(seed)
    spec = random_spec(rng)
    net = decode_weights(spec, random_blob(spec, seed, adversarial))
    x = random_inputs(spec, rng, int(rng.integers(1, 50)))
    assert_same(all_logits(net, x))


@pytest.fixture
def threads() -> Iterator[None]:
    import numba

    before = (numba.get_num_threads(), torch.get_num_threads())
    yield
    numba.set_num_threads(before[0])
    torch.set_num_threads(before[1])


@pytest.mark.usefixtures("threads")
def test_thread_counts_change_nothing() -> None:
    import numba

    rng = np.random.default_rng(7)
    spec = NetSpec.resnet((3, 12, 12), [(8, 1), (16, 1)], 10, pool=True)
    net = decode_weights(spec, random_blob(spec, 7))
    x = random_inputs(spec, rng, 300)  # several numba tiles, more than one torch batch row block
    mlp = NetSpec.mlp(200, (300, 100), 10)
    mnet = decode_weights(mlp, random_blob(mlp, 8))
    mx = random_inputs(mlp, rng, 300)
    seen = []
    for n in (1, 2):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(n)
        seen.append((all_logits(net, x), all_logits(mnet, mx)))
    for a, b in zip(seen[0], seen[1], strict=True):
        ref = assert_same(a)
        assert_same(b)
        assert np.array_equal(ref, b["numpy"])
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_accumulator_reaches_the_bound_exactly() -> None:
    """Fan-in 2**16, every product 127 * 127, bias 2**30: the logit is ACC_MAX on every backend."""
    spec = NetSpec((16, 64, 64), (Layer.dense(2, relu=False),), 2)
    w = np.full((2, 65536), Q_MAX)
    w[1] = -Q_MAX
    arrays = [np.ones(16, int), np.zeros(16, int), w, np.array([BIAS_MAX, -BIAS_MAX])]
    net = decode_weights(spec, encode_weights(spec, arrays))
    x = np.full((3, 16, 64, 64), dnn.INPUT_MAX)
    x[1] = dnn.INPUT_MIN  # clamps to -127: products flip sign
    out = assert_same(all_logits(net, x))
    assert out[0].tolist() == [ACC_MAX, -ACC_MAX]
    assert out[1].tolist() == [-ACC_MAX + 2 * BIAS_MAX, ACC_MAX - 2 * BIAS_MAX]


def test_largest_conv_fan_in_and_saturation() -> None:
    """A 7x7 convolution over 1337 channels (fan-in 65513) at full scale, then every extreme of
    the requantisation; a wrapped int32 would flip the sign of the result."""
    spec = NetSpec(
        (1337, 7, 7),
        (Layer.conv(3, 7, relu=False), Layer.avgpool(), Layer.dense(2, relu=False)),
        2,
    )
    parts = blob_parts(spec)
    w = np.full(parts[2].shape, Q_MAX)
    w[1] = -Q_MAX
    w[2, :, ::2] = -Q_MAX
    arrays = [
        np.ones(1337, int),
        np.zeros(1337, int),
        w,
        np.array([BIAS_MAX, -BIAS_MAX, 0]),
        np.array([MULT_MAX, MULT_MAX, 1]),
        np.array([SHIFT_MAX, SHIFT_MAX, 0]),
        np.array([1, 1, 1]),
        np.array([0, 0, 0]),
        np.array([[1, 0, 0], [0, 1, 1]]),
        np.array([0, 0]),
    ]
    net = decode_weights(spec, encode_weights(spec, arrays))
    x = np.full((2, 1337, 7, 7), dnn.INPUT_MAX)
    x[1, :, 3, 3] = dnn.INPUT_MIN
    out = assert_same(all_logits(net, x))
    assert out[0, 0] > 0 and out[0, 1] < 0


def test_ties_go_to_the_lowest_index() -> None:
    spec = NetSpec((3,), (Layer.dense(6, relu=False),), 6)
    w = np.array([[1, 0, 0], [2, 0, 0], [5, 5, 5], [5, 5, 5], [0, 0, 0], [5, 5, 5]])
    arrays = [np.ones(3, int), np.zeros(3, int), w, np.array([0, 0, 0, 0, 0, 0])]
    blob = encode_weights(spec, arrays)
    x = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1], [3, -3, 0]])
    # logits: row 0 (1, 2, 15, 15, 0, 15): classes 2, 3, 5 tie; row 1 all 0;
    # row 2 (-1, -2, -15, -15, 0, -15); row 3 (3, 6, 0, 0, 0, 0).
    for b in ["numpy", *FAST]:
        assert dnn.infer(spec, blob, x, backend=b).tolist() == [2, 0, 4, 1]
    assert twin.argmax_lowest(np.array([[7, 7], [-1, -1], [0, 3]])).tolist() == [0, 0, 1]


def test_infer_reference_is_the_twin() -> None:
    rng = np.random.default_rng(3)
    spec = random_spec(rng)
    blob = random_blob(spec, 3)
    x = random_inputs(spec, rng, 20)
    assert dnn.infer_reference(spec, blob, x).tolist() == dnn.infer(spec, blob, x).tolist()


def test_torch_int32_fallback_agrees() -> None:
    """Where a device's int8 product fails the exactness probe, torch multiplies in int32."""
    from lazyledger.materialize.qnet import torch_backend as tb

    assert tb.int_mm_exact("cpu")
    rng = np.random.default_rng(11)
    spec = NetSpec.resnet((2, 9, 9), [(5, 1)], 4, pool=True)
    net = decode_weights(spec, random_blob(spec, 11, adversarial=True))
    x = random_inputs(spec, rng, 40)
    tn = tb.torch_net(net, "cpu")
    tn.fast = False
    assert np.array_equal(tb.torch_logits(tn, x), qnet.logits(net, x, "numpy"))


def test_pick_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(qnet.BACKEND_ENV, raising=False)
    assert qnet.pick_backend() == ("torch-cuda" if torch.cuda.is_available() else "numba")
    assert qnet.pick_backend("numpy") == "numpy"
    monkeypatch.setenv(qnet.BACKEND_ENV, "torch-cpu")
    assert qnet.pick_backend() == "torch-cpu"
    with pytest.raises(BackendUnavailable, match="unknown"):
        qnet.pick_backend("tpu")
    if not torch.cuda.is_available():
        spec, blob = golden_net()
        with pytest.raises(BackendUnavailable, match="CUDA"):
            dnn.infer(spec, blob, np.zeros((1, 2), int), backend="torch-cuda")


def test_batches_do_not_matter() -> None:
    """The Numba kernel and torch split samples into batches; any split gives the same logits."""
    rng = np.random.default_rng(5)
    spec = NetSpec.resnet((3, 16, 16), [(16, 1)], 10)
    net = decode_weights(spec, random_blob(spec, 5))
    x = random_inputs(spec, rng, 70)
    whole = qnet.logits(net, x, "numba")
    from lazyledger.materialize.qnet import torch_backend as tb

    assert qk.batch_size(spec, 70, 1) == 1
    parts = np.concatenate([qk.numba_logits(net, x[i : i + 7]) for i in range(0, 70, 7)])
    assert np.array_equal(whole, parts)
    old = tb.BATCH_BYTES_CPU
    try:
        tb.BATCH_BYTES_CPU = 1
        assert np.array_equal(tb.torch_logits(net, x, "cpu"), whole)
    finally:
        tb.BATCH_BYTES_CPU = old
