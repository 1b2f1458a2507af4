"""Blob availability as a validation rule: a transaction naming a blob the validator does not
hold, that does not hash right, exceeds the genesis bound or is malformed for its kind never
enters a block, so no withheld blob can freeze a job."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import dnn
from lazyledger.materialize.blobs import BlobRef, BlobRule, references
from lazyledger.materialize.host import blob_hash
from lazyledger.materialize.train import train

SPEC = dnn.ModelSpec.mlp(64, (16,), 10, input_shift=4)
OTHER_SPEC = dnn.ModelSpec.mlp(64, (8,), 10, input_shift=4)
KEYS = [ll.Keypair.from_seed(bytes([0x90 + i]) * 32) for i in range(6)]
OWNER, ATTACKER, PROVIDER, PAYEE, USER, ISSUER = KEYS


@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    train_blob, val_blob = dnn.digits_blobs()
    x, y = dnn.decode_dataset(val_blob)
    return {
        "spec": SPEC.to_bytes(),
        "other_spec": OTHER_SPEC.to_bytes(),
        "train": train_blob,
        "val": val_blob,
        "good": train(SPEC, train_blob, epochs=2, seed=0),
        "withheld": train(SPEC, train_blob, epochs=2, seed=7),  # nobody ever publishes it
        "other_weights": train(OTHER_SPEC, train_blob, epochs=0, seed=0),
        "inputs": dnn.encode_dataset(x[:2], y[:2]),
    }


def genesis(max_blob_bytes: int = ll.model.DEFAULT_MAX_BLOB_BYTES) -> ll.Genesis:
    funded = {k.account: {0: 10_000} for k in KEYS}
    return ll.Genesis(
        "blobs", 3, [ISSUER.public_key], {0: ISSUER.account}, funded, {}, max_blob_bytes
    )


def threshold(blobs: dict[str, bytes]) -> int:
    """A threshold the "good" weights pass (a verdict is exact: no margin needed)."""
    v = dnn.check_claim(SPEC, blobs["good"], blobs["val"], 1)
    assert v.correct > 0
    return max(1, v.correct * 1000 // v.total)


def post_job(
    led: ll.Ledger, blobs: dict[str, bytes], hidden: bool = False, nonce: int = 0
) -> tuple[ll.Transaction, bytes]:
    job = ll.dnn_job(
        OWNER,
        nonce=nonce,
        spec=blob_hash(blobs["spec"]),
        train=blob_hash(blobs["train"]),
        validation=blob_hash(blobs["val"]),
        threshold_permille=threshold(blobs),
        asset=0,
        bounty=1_000,
        hidden=hidden,
    )
    led.append(led.propose([job], ISSUER))
    return job, ll.job_account(job.id)


def publish(led: ll.Ledger, blobs: dict[str, bytes], *names: str) -> None:
    for name in names:
        led.put_blob(blobs[name])


def stored(led: ll.Ledger) -> tuple[int, bytes]:
    return led.height, led.head_id


def test_a_claim_on_a_withheld_blob_never_freezes_a_job(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    """The issue's attack: a claim naming a weights blob nobody holds, placed before a valid
    claim. It never enters a block; the valid claim and the provider's state materialise."""
    with ll.Ledger.create(tmp_path / "a", genesis()) as led:
        publish(led, blobs, "spec", "train", "val", "good")
        job, j = post_job(led, blobs)
        withheld = blob_hash(blobs["withheld"])
        bad = ll.dnn_claim(ATTACKER, nonce=0, job=j, weights=withheld)
        good = ll.dnn_claim(PROVIDER, nonce=0, job=j, weights=blob_hash(blobs["good"]))
        with pytest.raises(ll.BlobUnavailable, match=f"weights blob {withheld.hex()}") as err:
            led.check_transaction(bad)  # the mempool refuses it
        assert err.value.missing and err.value.blob == withheld
        assert led.missing_blobs(bad) == [withheld] and led.missing_blobs(good) == []
        before = stored(led)
        block = led.propose([bad, good], ISSUER)
        at = {tx.id: pos for pos, tx in block.transactions()}
        assert at[bad.id] < at[good.id]  # the bad claim comes first in global order
        with pytest.raises(ll.InvalidBlock, match=f"weights blob {withheld.hex()}"):
            led.append(block)  # a proposer that includes it anyway makes its block invalid
        assert stored(led) == before
        with pytest.raises(ll.NotFound):
            led.position(good.id)
        led.append(led.propose([good], ISSUER))
        pay = ll.transfer(PROVIDER, nonce=1, to=PAYEE.account, asset=0, amount=600)
        led.append(led.propose([pay], ISSUER))
        with pytest.raises(ll.InvalidBlock, match="not held by this node"):
            led.append(led.propose([bad], ISSUER))  # nor later, after the valid claim
        assert led.receipt(good.id).applied
        assert led.state(PROVIDER.account).balances == {0: 10_400}
        assert led.state(PAYEE.account).balances == {0: 10_600}
        assert led.state(j).storage[ll.ops.JOB_STATUS] == ll.ops.JOB_WON + ll.shards.pack_position(
            *led.position(good.id)
        )
        assert job.id == led.job_transaction(j).id


def test_each_kind_of_bad_blob_is_refused_naming_it(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    """Missing, over the genesis bound, not matching its hash, malformed for its kind: each
    refusal is typed, names the blob and its argument, and stores nothing."""
    bound = max(len(blobs["spec"]), len(blobs["inputs"]), len(blobs["val"])) + 1
    with ll.Ledger.create(tmp_path / "b", genesis(bound)) as led:
        publish(led, blobs, "spec", "other_spec", "val", "inputs")
        with pytest.raises(ll.InvalidRequest, match="exceeds max_blob_bytes"):
            led.put_blob(blobs["train"])  # training data over this chain's bound
        assert not led.has_blob(blob_hash(blobs["train"]))
        env = led.store.blobs
        with env.write() as txn:  # bytes that entered the store some other way
            txn.put(
                blob_hash(blobs["train"]), led.store.compress(blobs["train"]), db=env.db["blobs"]
            )
            txn.put(b"\x11" * 32, led.store.compress(blobs["val"]), db=env.db["blobs"])
        val, spec = blob_hash(blobs["val"]), blob_hash(blobs["spec"])
        cases = {
            "exceed max_blob_bytes": dict(train=blob_hash(blobs["train"])),
            "do not hash to it": dict(train=b"\x11" * 32),
            "malformed spec": dict(spec=val),
            "malformed dataset": dict(validation=spec),
            "not held by this node": dict(validation=b"\x22" * 32),
        }
        before = stored(led)
        for reason, fields in cases.items():
            args = {"spec": spec, "train": val, "validation": val, **fields}
            job = ll.dnn_job(OWNER, nonce=0, threshold_permille=1, asset=0, bounty=1, **args)
            name = next(iter(fields))
            shown = "train" if name == "train" else name
            with pytest.raises(ll.BlobUnavailable, match=reason) as err:
                led.check_transaction(job)
            assert err.value.field == shown and err.value.blob == fields[name]
            with pytest.raises(ll.InvalidBlockTransaction, match=f"{shown} blob .*{reason}"):
                led.append(led.propose([job], ISSUER))
            assert stored(led) == before
        # a well-formed job; then claims and inferences with blobs of the wrong kind
        job = ll.dnn_job(
            OWNER,
            nonce=0,
            spec=spec,
            train=val,
            validation=val,
            threshold_permille=1,
            asset=0,
            bounty=1,
        )
        led.append(led.propose([job], ISSUER))
        j = ll.job_account(job.id)
        zeros = dnn.encode_weights(
            SPEC, [np.zeros(s, dtype=np.float32) for _, s in SPEC.param_shapes()]
        )
        nan = zeros[:-4] + np.array([np.nan], dtype="<f4").tobytes()
        env = led.store.blobs
        with env.write() as txn:
            txn.put(blob_hash(nan), led.store.compress(nan), db=env.db["blobs"])
        publish(led, {"w": blobs["other_weights"]}, "w")
        before = stored(led)
        for weights in (blob_hash(nan), blob_hash(blobs["other_weights"]), val):
            claim = ll.dnn_claim(PROVIDER, nonce=0, job=j, weights=weights)
            with pytest.raises(ll.InvalidBlock, match=f"weights blob {weights.hex()}: malformed"):
                led.append(led.propose([claim], ISSUER))
        infer = ll.dnn_infer(USER, nonce=0, job=j, inputs=spec, register=0, count=1)
        with pytest.raises(ll.InvalidBlock, match=f"inputs blob {spec.hex()}: malformed"):
            led.append(led.propose([infer], ISSUER))
        assert stored(led) == before


def test_hidden_sets_are_needed_from_the_reveal_on(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    with ll.Ledger.create(tmp_path / "h", genesis()) as led:
        publish(led, blobs, "spec", "train", "good")
        _, j = post_job(led, blobs, hidden=True)  # valid without its hidden validation set
        claim = ll.dnn_claim(PROVIDER, nonce=0, job=j, weights=blob_hash(blobs["good"]))
        led.append(led.propose([claim], ISSUER))
        reveal = ll.dnn_reveal(OWNER, nonce=1, job=j)
        with pytest.raises(ll.InvalidBlock, match="hidden validation blob"):
            led.append(led.propose([reveal], ISSUER))
        assert led.block_blobs(2) == [blob_hash(blobs["good"])]
        publish(led, blobs, "val")
        led.append(led.propose([reveal], ISSUER))
        assert led.block_blobs(3) == [blob_hash(blobs["val"])]
        assert led.block_blobs(1) == [blob_hash(blobs["spec"]), blob_hash(blobs["train"])]
        assert led.receipt(claim.id).applied


def test_appending_in_a_batch_sees_jobs_of_earlier_blocks(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    """A follower appends many blocks at once: a claim checks its weights against the spec of
    a job stored in an earlier block of the same batch."""
    with ll.Ledger.create(tmp_path / "src", genesis()) as src:
        publish(src, blobs, "spec", "train", "val", "good", "other_weights")
        _, j = post_job(src, blobs)
        good = ll.dnn_claim(PROVIDER, nonce=0, job=j, weights=blob_hash(blobs["good"]))
        src.append(src.propose([good], ISSUER))
        chain = [src.block(h).to_bytes() for h in (1, 2)]
        wrong = ll.dnn_claim(ATTACKER, nonce=0, job=j, weights=blob_hash(blobs["other_weights"]))
    with ll.Ledger.create(tmp_path / "dst", genesis()) as dst:
        publish(dst, blobs, "spec", "train", "val", "other_weights")
        with pytest.raises(ll.InvalidBlock, match=r"weights blob .*not held"):
            dst.append_many(chain)
        assert dst.height == 0  # all or nothing
        publish(dst, blobs, "good")
        dst.append_many(chain)
        assert dst.receipt(good.id).applied
        with pytest.raises(ll.InvalidBlock, match="malformed weights"):
            dst.append(dst.propose([wrong], ISSUER))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_memo_never_passes_what_a_fresh_check_refuses(
    blobs: dict[str, bytes], seed: int
) -> None:
    """The rule remembers blobs that passed, keyed by kind and spec: on random sequences of
    references (right and wrong kinds, held and missing blobs) a long-lived rule gives the same
    verdict as a fresh one every time."""
    rng = random.Random(seed)
    held = {blob_hash(b): b for name, b in blobs.items() if name != "withheld"}
    names = [*sorted(held), blob_hash(blobs["withheld"])]
    specs = [blob_hash(blobs["spec"]), blob_hash(blobs["other_spec"])]
    bound = rng.choice([len(blobs["val"]), 10**9])
    lived = BlobRule(bound, held.get, held.__contains__)

    def verdict(rule: BlobRule, ref: BlobRef) -> str:
        try:
            rule.check_ref(ref)
        except ll.BlobUnavailable as e:
            return e.reason
        return "ok"

    seen = set()
    lost = 0
    for _ in range(60):
        kind = rng.choice(["spec", "dataset", "weights"])
        ref = BlobRef(
            rng.choice(names), kind, kind, rng.choice(specs) if kind == "weights" else None
        )
        fresh = verdict(BlobRule(bound, held.get), ref)
        assert verdict(lived, ref) == fresh
        seen.add(fresh == "ok")
        if fresh == "ok" and rng.random() < 0.3:  # lost after passing: refused, then restored
            lost += 1
            data = held.pop(ref.blob)
            assert verdict(lived, ref) == "not held by this node"
            held[ref.blob] = data
    assert seen == {True, False} and lost


def test_references_follow_the_call(blobs: dict[str, bytes]) -> None:
    h = {n: blob_hash(b) for n, b in blobs.items()}
    job = ll.dnn_job(
        OWNER,
        nonce=0,
        spec=h["spec"],
        train=h["train"],
        validation=h["val"],
        threshold_permille=5,
        asset=0,
        bounty=1,
        hidden=True,
    )
    call = job.call
    assert isinstance(call, ll.ops.DnnJob)

    def terms(j: bytes) -> ll.ops.DnnJob | None:
        return call if j == b"\x01" * 32 else None

    assert [r.field for r in references(job, terms)] == ["spec", "train"]
    claim = ll.dnn_claim(PROVIDER, nonce=0, job=b"\x01" * 32, weights=h["good"])
    assert references(claim, terms) == [BlobRef(h["good"], "weights", "weights", h["spec"])]
    reveal = ll.dnn_reveal(OWNER, nonce=1, job=b"\x01" * 32)
    assert references(reveal, terms) == [BlobRef(h["val"], "hidden validation", "dataset")]
    assert (
        references(ll.dnn_claim(PROVIDER, nonce=0, job=b"\x02" * 32, weights=h["good"]), terms)
        == []
    )
    assert references(ll.transfer(OWNER, nonce=0, to=PAYEE.account, asset=0, amount=1), terms) == []
