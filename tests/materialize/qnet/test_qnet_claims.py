"""Rule-2 claims: trained int8 models pass on digits with the same verdict on every backend,
broken claims fail with a reason, and rule-1 and rule-2 jobs live side by side on a ledger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import dnn, qnet
from lazyledger.materialize.dnn import InvalidBlob, Verdict
from lazyledger.materialize.host import blob_hash
from lazyledger.materialize.qnet import NetSpec
from lazyledger.materialize.qnet.export import fixed_point, synthetic_weights
from lazyledger.materialize.qnet.spec import MULT_MAX, SHIFT_MAX
from lazyledger.materialize.reference import replay_chain
from lazyledger.ops import JOB_STATUS, JOB_WON, REGISTER_BASE

torch = pytest.importorskip("torch")
train = pytest.importorskip("lazyledger.materialize.train")

MLP = NetSpec.mlp(64, (64, 32), 10)
RES = NetSpec.resnet((1, 8, 8), [(16, 1), (32, 1)], 10)
BACKENDS = ["numpy", "numba", "torch-cpu"] + (["torch-cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def digits() -> tuple[bytes, bytes]:
    return dnn.digits_blobs()


@pytest.fixture(scope="module")
def trained(digits: tuple[bytes, bytes]) -> dict[str, bytes]:
    return {
        "mlp": train.train(MLP, digits[0], epochs=20, seed=0, device="cpu"),
        "res": train.train(RES, digits[0], epochs=8, seed=0, device="cpu"),
    }


def test_fixed_point() -> None:
    for m in (1.0, 0.5, 1e-3, 3.7, 1e-12, 2.0**-40, 1e12, 0.999999999999):
        mult, shift = fixed_point(m)
        assert 0 <= mult <= MULT_MAX and 0 <= shift <= SHIFT_MAX
        if 2.0**-31 < m < 2.0**31:
            assert abs(mult / 2**shift - m) <= m * 2.0**-30
    assert fixed_point(0.0) == (0, 0) and fixed_point(-1.0) == (0, 0)


@pytest.mark.parametrize("name", ["mlp", "res"])
def test_trained_models_pass_identically_everywhere(
    name: str, trained: dict[str, bytes], digits: tuple[bytes, bytes]
) -> None:
    spec = MLP if name == "mlp" else RES
    verdicts = {
        b: dnn.check_claim(spec, trained[name], digits[1], 900, backend=b) for b in BACKENDS
    }
    v = verdicts["numba"]
    assert v.passed and v.total == 449, v
    assert all(other == v for other in verdicts.values()), verdicts
    assert v.reason == f"{v.correct}/449 correct: {v.correct * 1000} >= 900*449"
    assert dnn.check_claim(spec, trained[name], digits[1], 900) == v  # the automatic choice


def test_quantised_model_tracks_the_float_model(digits: tuple[bytes, bytes]) -> None:
    """Post-training quantisation (batch norm folded, per-channel int8) keeps the accuracy of
    the float model it came from within a few samples."""
    from lazyledger.materialize.qnet import export

    spec = NetSpec.resnet((1, 8, 8), [(8, 1)], 10)
    x, y = dnn.load_dataset(spec, digits[0])
    torch.manual_seed(0)
    model = export.build_float_model(spec, input_scale=1 / 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    for _ in range(5):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[i : i + 64]), yt[i : i + 64]).backward()
            opt.step()
    model.eval()
    xv, yv = dnn.load_dataset(spec, digits[1])
    with torch.inference_mode():
        float_ok = int(
            (model(torch.from_numpy(xv.astype(np.float32))).argmax(1).numpy() == yv).sum()
        )
    blob = export.quantize_model(spec, model, x[:1000])
    int_ok = int((dnn.infer(spec, blob, xv) == yv).sum())
    assert float_ok > 300 and abs(int_ok - float_ok) <= 10, (float_ok, int_ok)


def test_broken_claims_fail_with_a_reason(
    trained: dict[str, bytes], digits: tuple[bytes, bytes]
) -> None:
    val = digits[1]
    blob = trained["mlp"]
    untrained = train.train(MLP, digits[0], epochs=0, seed=0, device="cpu")
    assert not dnn.check_claim(MLP, untrained, val, 900).passed
    net = qnet.decode_weights(MLP, blob)
    parts = qnet.weights.net_parts(net)
    flipped = qnet.encode_weights(MLP, [*parts[:-2], -parts[-2], parts[-1]])
    assert not dnn.check_claim(MLP, flipped, val, 900).passed
    assert not dnn.check_claim(MLP, synthetic_weights(MLP), val, 900).passed
    body = 7 + len(MLP.to_bytes()) + 5 * 64  # header, input requantisation
    minus128 = bytearray(blob)
    minus128[body + 10] = 0x80  # L0.weight, flat index 10
    for bad, why in [
        (bytes(minus128), "L0.weight holds -128 at flat index 10"),
        (blob[:-1], "spec wants"),
        (blob + b"\x00", "spec wants"),
        (b"", "truncated"),
        (trained["res"], "another model spec"),
        (
            dnn.encode_weights(
                dnn.ModelSpec.mlp(64, (64,), 10),
                [
                    np.zeros(s, np.float32)
                    for _, s in dnn.ModelSpec.mlp(64, (64,), 10).param_shapes()
                ],
            ),
            "version 1",
        ),
    ]:
        v = dnn.check_claim(MLP, bad, val, 900)
        assert v == Verdict(False, 0, 449, v.reason) and why in v.reason, v
        assert v.reason.startswith("rejected claim: invalid weights blob:")
        with pytest.raises(InvalidBlob):
            dnn.decode_weights(MLP, bad)


def test_task_defects_raise(trained: dict[str, bytes], digits: tuple[bytes, bytes]) -> None:
    with pytest.raises(dnn.InvalidModel, match="threshold"):
        dnn.check_claim(MLP, trained["mlp"], digits[1], 1001)
    wrong = dnn.encode_dataset(np.zeros((2, 63), int), np.zeros(2, int))
    with pytest.raises(InvalidBlob, match="64"):
        dnn.check_claim(MLP, trained["mlp"], wrong, 900)


# --------------------------------------------------------------------------------------------
# On a ledger: a rule-1 job and a rule-2 job side by side

KEYS = [ll.Keypair.from_seed(bytes([0x50 + i]) * 32) for i in range(5)]
OWNER, BAD, GOOD, USER, ISSUER = KEYS
V1 = dnn.ModelSpec.mlp(64, (32,), 10, input_shift=4)


@pytest.fixture(scope="module")
def blobs(trained: dict[str, bytes], digits: tuple[bytes, bytes]) -> dict[str, bytes]:
    x, y = dnn.decode_dataset(digits[1])
    return {
        "spec1": V1.to_bytes(),
        "spec2": MLP.to_bytes(),
        "train": digits[0],
        "val": digits[1],
        "good1": train.train(V1, digits[0], epochs=15, seed=0, device="cpu"),
        "good2": trained["mlp"],
        "bad2": synthetic_weights(MLP, 1),
        "inputs": dnn.encode_dataset(x[:4], y[:4]),
    }


def test_rule1_and_rule2_jobs_on_a_ledger(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    funded = {k.account: {0: 10_000} for k in KEYS}
    led = ll.Ledger.create(
        tmp_path / "l", ll.Genesis("q", 3, [ISSUER.public_key], {0: ISSUER.account}, funded, {})
    )
    h = {name: blob_hash(b) for name, b in blobs.items()}
    with led:
        for name, data in blobs.items():
            kind = "spec" if name.startswith("spec") else None
            led.put_blob(data, kind=kind)
        led.put_blob(blobs["good2"], kind="weights:" + h["spec2"].hex())
        with pytest.raises(InvalidBlob):
            led.put_blob(blobs["good1"], kind="weights:" + h["spec2"].hex())
        jobs = [
            ll.dnn_job(
                OWNER,
                nonce=i,
                spec=h[s],
                train=h["train"],
                validation=h["val"],
                threshold_permille=900,
                asset=0,
                bounty=100,
            )
            for i, s in enumerate(["spec1", "spec2"])
        ]
        led.append(led.propose(jobs, ISSUER))
        j1, j2 = (ll.job_account(j.id) for j in jobs)
        claims = {
            "bad2": ll.dnn_claim(BAD, nonce=0, job=j2, weights=h["bad2"]),
            "good2": ll.dnn_claim(GOOD, nonce=0, job=j2, weights=h["good2"]),
            "good1": ll.dnn_claim(GOOD, nonce=1, job=j1, weights=h["good1"]),
        }
        led.append(led.propose([claims["bad2"]], ISSUER))
        led.append(led.propose([claims["good2"], claims["good1"]], ISSUER))
        infer = ll.dnn_infer(USER, nonce=0, job=j2, inputs=h["inputs"], register=0, count=4)
        led.append(led.propose([infer], ISSUER))
        assert led.receipt(claims["bad2"].id).reason == ll.ops.REASONS[ll.ops.Status.CLAIM_REJECTED]
        assert led.receipt(claims["good2"].id).applied and led.receipt(claims["good1"].id).applied
        pos = led.position(claims["good2"].id)
        assert led.state(j2).storage == {JOB_STATUS: JOB_WON + ll.shards.pack_position(*pos)}
        x, _ = dnn.decode_dataset(blobs["inputs"])
        expected = dnn.infer(MLP, blobs["good2"], x)
        assert led.state(USER.account).storage == {
            REGISTER_BASE + k: int(c) + 1 for k, c in enumerate(expected)
        }
        assert led.state(GOOD.account).balances == {0: 10_200}
        ref, receipts = replay_chain(
            led.genesis, list(led.blocks()), blobs={h[n]: b for n, b in blobs.items()}
        )
        assert led.replay_all() == ref
        for tx in [*claims.values(), infer]:
            r = led.receipt(tx.id)
            assert (r.applied, r.reason) == receipts[tx.id]
