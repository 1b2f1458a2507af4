"""DNN jobs, claims and inference on the ledger: the first valid claim wins, checks run only
where a materialisation needs them and once per node, and every path agrees with the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import dnn
from lazyledger.materialize.reference import replay_chain
from lazyledger.materialize.train import claim_job, train
from lazyledger.ops import JOB_STATUS, JOB_WON, REGISTER_BASE

SPEC = dnn.ModelSpec.mlp(64, (32,), 10, input_shift=4)
KEYS = [ll.Keypair.from_seed(bytes([0x30 + i]) * 32) for i in range(6)]
OWNER, BAD, GOOD, USER, PAYEE, ISSUER = KEYS


@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    train_blob, val_blob = dnn.digits_blobs()
    good = train(SPEC, train_blob, epochs=25, seed=0)
    untrained = train(SPEC, train_blob, epochs=0, seed=1)
    x, y = dnn.decode_dataset(val_blob)
    inputs = dnn.encode_dataset(x[:3], y[:3])
    return {
        "spec": SPEC.to_bytes(),
        "train": train_blob,
        "val": val_blob,
        "good": good,
        "untrained": untrained,
        "inputs": inputs,
    }


def genesis() -> ll.Genesis:
    funded = {k.account: {0: 10_000} for k in KEYS}
    return ll.Genesis("dnn", 3, [ISSUER.public_key], {0: ISSUER.account}, funded, {})


def post_job(
    led: ll.Ledger, hashes: dict[str, bytes], bounty: int, hidden: bool = False
) -> tuple[ll.Transaction, bytes]:
    """OWNER posts a 900 permille digits job in a block of its own; returns it and its account."""
    job = ll.dnn_job(
        OWNER,
        nonce=0,
        spec=hashes["spec"],
        train=hashes["train"],
        validation=hashes["val"],
        threshold_permille=900,
        asset=0,
        bounty=bounty,
        hidden=hidden,
    )
    led.append(led.propose([job], ISSUER))
    return job, ll.job_account(job.id)


def build(
    path: Path, blobs: dict[str, bytes], store_blobs: bool = True
) -> tuple[ll.Ledger, dict[str, ll.Transaction]]:
    led = ll.Ledger.create(path, genesis())
    hashes = {name: dnn_hash(data) for name, data in blobs.items()}
    if store_blobs:
        for data in blobs.values():
            led.put_blob(data)
    job, j = post_job(led, hashes, 1_000)
    txs = {
        "job": job,
        "bad": ll.dnn_claim(BAD, nonce=0, job=j, weights=hashes["untrained"]),
        "good": ll.dnn_claim(GOOD, nonce=0, job=j, weights=hashes["good"]),
        "late": ll.dnn_claim(BAD, nonce=1, job=j, weights=hashes["good"]),
    }
    # three claims in one block, ordered by shard then index: find the global order first
    led.append(led.propose([txs["bad"], txs["good"], txs["late"]], ISSUER))
    txs["infer"] = ll.dnn_infer(USER, nonce=0, job=j, inputs=hashes["inputs"], register=0, count=3)
    led.append(led.propose([txs["infer"]], ISSUER))
    return led, txs


def dnn_hash(data: bytes) -> bytes:
    from lazyledger.materialize.host import blob_hash

    return blob_hash(data)


def order(led: ll.Ledger, txs: dict[str, ll.Transaction], *names: str) -> list[str]:
    return sorted(names, key=lambda n: led.position(txs[n].id))


def test_first_valid_claim_wins_and_states_match_reference(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    led, txs = build(tmp_path / "a", blobs)
    with led:
        ranked = [n for n in order(led, txs, "bad", "good", "late") if n != "bad"]
        winner, loser = ranked  # both carry the trained weights: the first in global order wins
        assert led.receipt(txs[winner].id).applied
        assert led.receipt(txs[loser].id).reason == ll.ops.REASONS[ll.ops.Status.JOB_NOT_OPEN]
        assert led.receipt(txs["bad"].id).reason == ll.ops.REASONS[ll.ops.Status.CLAIM_REJECTED]
        j = ll.job_account(txs["job"].id)
        job_state = led.state(j)
        assert job_state.balances == {} and job_state.storage == {
            JOB_STATUS: JOB_WON + ll.shards.pack_position(*led.position(txs[winner].id))
        }
        ref, receipts = replay_chain(
            led.genesis, list(led.blocks()), blobs={dnn_hash(b): b for b in blobs.values()}
        )
        for k in KEYS:
            assert led.state(k.account) == ref[k.account]
        assert led.replay_all() == ref
        for tx in txs.values():
            r = led.receipt(tx.id)
            assert (r.applied, r.reason) == receipts[tx.id]
        for h in range(1, led.height + 1):  # the map from index rows: job accounts included
            assert led.materializer.touches(h).root == led.header(h).touch_root


def test_inference_registers_and_conditional_payout(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    led, _txs = build(tmp_path / "b", blobs)
    with led:
        x, _ = dnn.decode_dataset(blobs["inputs"])
        expected = dnn.infer(SPEC, blobs["good"], x)
        st = led.state(USER.account)
        assert st.storage == {REGISTER_BASE + k: int(c) + 1 for k, c in enumerate(expected)}
        assert st.registers == {k: int(c) for k, c in enumerate(expected)}
        pay = ll.transfer_if(
            USER, nonce=1, to=PAYEE.account, asset=0, amount=7, register=1, equals=int(expected[1])
        )
        wrong = ll.transfer_if(
            USER,
            nonce=2,
            to=PAYEE.account,
            asset=0,
            amount=9,
            register=1,
            equals=int(expected[1]) + 1,
        )
        led.append(led.propose([pay, wrong], ISSUER))
        assert led.receipt(pay.id).applied
        assert led.receipt(wrong.id).reason == "the register does not hold the required value"
        assert led.state(PAYEE.account).balances == {0: 10_007}


def test_checks_run_only_where_needed_and_once(
    tmp_path: Path, blobs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = dnn.check_claim

    def counting(spec: dnn.ModelSpec, weights: bytes, val: bytes, threshold: int) -> dnn.Verdict:
        calls.append(dnn_hash(weights))
        return real(spec, weights, val, threshold)

    monkeypatch.setattr(dnn, "check_claim", counting)
    led, _txs = build(tmp_path / "c", blobs)
    with led:
        assert led.cost(OWNER.account).dnn_checks == 0
        led.state(OWNER.account)  # the escrow left before any claim: no check needed
        led.state(PAYEE.account)
        assert calls == []
        assert led.cost(GOOD.account).dnn_checks >= 1
        led.state(GOOD.account)
        n = len(calls)
        assert 1 <= n <= 2  # the claims before and at GOOD's, never the late one
        led.state(GOOD.account)
        led.state(BAD.account)
        led.replay_all()
        assert len(calls) == len(set(calls)) <= 2  # memoised: each (job, weights) once per node
        assert led.cost(GOOD.account).dnn_checks == 0


def lose_blobs(led: ll.Ledger, hashes: list[bytes]) -> None:
    """Local data loss: delete blobs from this node's store behind the ledger's back."""
    env = led.store.blobs
    with env.write() as txn:
        for key in hashes:
            txn.delete(key, db=env.db["blobs"])


def test_missing_blob_is_named_and_retry_works(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    """With the blob rule a chain never references a blob its validators did not hold, so
    BlobMissing only means local data loss, and publishing the blob again heals it."""
    with pytest.raises(ll.InvalidBlock, match="not held by this node"):
        build(tmp_path / "refused", blobs, store_blobs=False)
    led, _txs = build(tmp_path / "d", blobs)
    with led:
        lose_blobs(led, [dnn_hash(b) for b in blobs.values()])
        with pytest.raises(ll.BlobMissing) as err:
            led.state(GOOD.account)
        missing = err.value.key
        assert missing in {dnn_hash(b) for b in blobs.values()}
        for data in blobs.values():
            led.put_blob(data)
        assert led.state(GOOD.account).balances in ({0: 11_000}, {0: 10_000})


def test_bad_dnn_input_is_typed_and_stores_nothing(
    ledger: ll.Ledger, keys: list[ll.Keypair]
) -> None:
    a = keys[0]
    claim = ll.dnn_claim(a, nonce=0, job=b"\x05" * 32, weights=b"\x06" * 32)
    with pytest.raises(ll.InvalidBlock, match="no job"):
        ledger.append(ledger.propose([claim], a))
    with pytest.raises(ll.InvalidTransaction, match="no job"):
        ledger.check_transaction(claim)
    with pytest.raises(dnn.InvalidModel):
        ledger.put_blob(b"\x00not a spec", kind="spec")
    spec_hash = ledger.put_blob(SPEC.to_bytes(), kind="spec")
    zeros = dnn.encode_weights(
        SPEC, [np.zeros(s, dtype=np.float32) for _, s in SPEC.param_shapes()]
    )
    bad_weights = zeros[:-4] + np.array([np.nan], dtype="<f4").tobytes()  # the last bias: NaN
    with pytest.raises(dnn.InvalidBlob):
        ledger.put_blob(bad_weights, kind="weights:" + spec_hash.hex())
    assert not ledger.has_blob(dnn_hash(bad_weights))
    with pytest.raises(ll.InvalidTransaction, match="threshold"):
        ledger.check_transaction(
            ll.dnn_job(
                a,
                nonce=0,
                spec=spec_hash,
                train=spec_hash,
                validation=spec_hash,
                threshold_permille=0,
                asset=0,
                bounty=1,
            )
        )


def test_provider_round_trip(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    """claim_job trains, uploads and signs; the ledger judges only the blob."""
    with ll.Ledger.create(tmp_path / "e", genesis()) as led:
        hashes = {n: led.put_blob(b) for n, b in blobs.items() if n in ("spec", "train", "val")}
        _, j = post_job(led, hashes, 500)
        claim = claim_job(led, j, GOOD, nonce=0, epochs=25, seed=3)
        led.append(led.propose([claim], ISSUER))
        assert led.receipt(claim.id).applied
        assert led.state(GOOD.account).balances == {0: 10_500}


def test_materialisation_order_does_not_matter(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    """Whichever claim a node happens to check first, every node ends with the same states."""
    a, _txs = build(tmp_path / "f", blobs)
    b, _ = build(tmp_path / "g", blobs)
    with a, b:
        for k in (BAD, GOOD, USER, OWNER):
            a.state(k.account)
        for k in (USER, GOOD, OWNER, BAD)[::-1]:
            b.state(k.account)
        assert a.replay_all() == b.replay_all()


def test_hidden_validation_set(tmp_path: Path, blobs: dict[str, bytes]) -> None:
    """The job commits only the validation hash; claims close at the owner's reveal, which is
    valid only with the hidden set published (until then judging a claim names the blob)."""
    with ll.Ledger.create(tmp_path / "h", genesis()) as led:
        hashes = {n: led.put_blob(b) for n, b in blobs.items() if n != "val"}
        val = dnn_hash(blobs["val"])
        _, j = post_job(led, {**hashes, "val": val}, 700, hidden=True)
        assert led.job(j) is not None and led.job(j).hidden  # type: ignore[union-attr]
        early = ll.dnn_claim(GOOD, nonce=0, job=j, weights=hashes["good"])
        with pytest.raises(ll.InvalidBlock, match="owner"):  # only the owner reveals
            led.append(led.propose([ll.dnn_reveal(BAD, nonce=0, job=j)], ISSUER))
        led.append(led.propose([early], ISSUER))
        with pytest.raises(ll.BlobMissing) as err:  # nobody can judge before the reveal
            led.state(GOOD.account)
        assert err.value.key == val
        reveal = ll.dnn_reveal(OWNER, nonce=1, job=j)
        with pytest.raises(ll.BlobUnavailable, match=f"hidden validation blob {val.hex()}"):
            led.check_transaction(reveal)  # the reveal must publish the hidden set
        with pytest.raises(ll.InvalidBlock, match="not held by this node"):
            led.append(led.propose([reveal], ISSUER))
        led.put_blob(blobs["val"])  # the owner publishes the data it reveals
        led.append(led.propose([reveal], ISSUER))
        late = ll.dnn_claim(BAD, nonce=0, job=j, weights=hashes["good"])
        with pytest.raises(ll.InvalidBlock, match="claims are closed"):
            led.append(led.propose([late], ISSUER))
        with pytest.raises(ll.InvalidTransaction, match="already revealed"):
            led.check_transaction(ll.dnn_reveal(OWNER, nonce=2, job=j))
        assert led.receipt(early.id).applied
        assert led.state(GOOD.account).balances == {0: 10_700}
        ref, _ = replay_chain(
            led.genesis, list(led.blocks()), blobs={dnn_hash(b): b for b in blobs.values()}
        )
        assert led.replay_all() == ref


def test_reveal_in_the_same_block_closes_later_claims(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    with ll.Ledger.create(tmp_path / "s", genesis()) as led:
        hashes = {n: led.put_blob(b) for n, b in blobs.items()}
        _, j = post_job(led, hashes, 5, hidden=True)
        reveal = ll.dnn_reveal(OWNER, nonce=1, job=j)
        first, *late = [
            ll.dnn_claim(k, nonce=0, job=j, weights=hashes["good"]) for k in (BAD, GOOD, USER)
        ]
        claims = [first, *late]
        led.append(led.propose([first, reveal, *late], ISSUER))  # BAD shares OWNER's shard
        assert (
            led.position(first.id) < led.position(reveal.id) < min(led.position(c.id) for c in late)
        )
        assert led.receipt(first.id).applied  # validators could not see the reveal yet:
        for c in late:  # global order decides
            assert led.receipt(c.id).reason == ll.ops.REASONS[ll.ops.Status.JOB_NOT_OPEN]
        ref, receipts = replay_chain(
            led.genesis, list(led.blocks()), blobs={dnn_hash(b): b for b in blobs.values()}
        )
        assert all(
            (led.receipt(c.id).applied, led.receipt(c.id).reason) == receipts[c.id] for c in claims
        )
        assert led.replay_all() == ref
