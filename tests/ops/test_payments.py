"""Embedder ops wider than two accounts (``lazyledger.ops.payments``: a split among up to 6
payees, access set 7; an NFT-style sale, access set 4) on a real ledger beside narrow ones:
rows 7 accounts wide, stored, reopened, sliced by the compiled walk and its slow twin, replayed
through the composed wide kernel, checkpointed by a policy, equal to the reference and to eager
replay, in receipts, touch commitments, worker processes and light-client answers."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.materialize.slice import python_closure, stored_rows
from lazyledger.node.accountant import prove_state
from lazyledger.ops import MAX, examples, payments
from lazyledger.ops.payments import Sale, Split
from lazyledger.shards import end_of, unpack_position

OPS = (*examples.OPS, *payments.OPS)
KEYS = [ll.Keypair.from_seed(bytes([70 + i]) * 32) for i in range(9)]
ISSUER = KEYS[0]
ITEM = 2  # the NFT-style asset


def genesis() -> ll.Genesis:
    held = {k.account: {0: 1_000, 1: 50} for k in KEYS}
    for k in KEYS[1:4]:
        held[k.account][ITEM] = 2
    return ll.Genesis(
        "payments",
        3,
        [ISSUER.public_key],
        {0: ISSUER.account, 1: ISSUER.account, ITEM: ISSUER.account},
        held,
        {},
        ops=[s.declared for s in OPS],
    )


def chain(path: Path, seed: int, blocks: int = 14) -> tuple[ll.Ledger, list[ll.Block]]:
    """Random splits (repeated payees, the sender among them), sales (roles that coincide,
    sellers without the item), sweeps, burns, transfers, and mints that bring balances near
    MAX so that credits overflow."""
    led = ll.Ledger.create(path, genesis(), ops=OPS)
    rng = random.Random(seed)
    nonce = dict.fromkeys((k.account for k in KEYS), 0)
    accounts = [k.account for k in KEYS]
    out = []
    for _ in range(blocks):
        txs = []
        for _ in range(rng.randrange(1, 10)):
            kp = rng.choice(KEYS[1:])
            kind = rng.randrange(7)
            call: object
            if kind <= 1:
                payees = [
                    (rng.choice(accounts), rng.choice([1, 5, 90, 700]))
                    for _ in range(rng.randrange(1, 7))
                ]
                call = Split(rng.randrange(2), tuple(payees))
            elif kind <= 3:
                roles = [rng.choice(accounts) for _ in range(3)]
                bps = rng.choice([(0, 0), (500, 250), (10_000, 0), (3_333, 3_333)])
                call = Sale(*roles, ITEM, rng.randrange(2), rng.choice([1, 3, 99, 900]), *bps)
            elif kind == 4:
                call = examples.Sweep(rng.choice(accounts), rng.randrange(2))
            elif kind == 5 and rng.random() < 0.3:
                kp = ISSUER
                call = ll.Mint(rng.choice(accounts), rng.randrange(2), rng.choice([MAX // 2, 7]))
            else:
                call = ll.Transfer(rng.choice(accounts), rng.randrange(2), rng.choice([1, 300]))
            txs.append(ll.sign(kp, nonce[kp.account], call, "payments"))  # type: ignore[arg-type]
            nonce[kp.account] += 1
        block = led.propose(txs, ISSUER)
        led.append(block)
        out.append(block)
    return led, out


@pytest.mark.parametrize("seed", [1, 2])
def test_lazy_equals_eager_equals_reference(tmp_path: Path, seed: int) -> None:
    led, blocks = chain(tmp_path / "c", seed)
    with led:
        assert led.materializer.width == 7  # the widest declared op
        assert led.cost(KEYS[2].account).slice_txs > 0  # (before queries write checkpoints)
        ref, receipts = replay_chain(led.genesis, blocks)
        assert led.replay_all() == ref
        for kp in KEYS:
            assert led.state(kp.account) == ref[kp.account]
            assert led.state(kp.account, 6) == replay_chain(led.genesis, blocks[:6])[0][kp.account]
        outcomes, reasons = set(), set()
        for block in blocks:
            for _, tx in block.transactions():
                r = led.receipt(tx.id)
                assert (r.applied, r.reason) == receipts[tx.id]
                outcomes.add((tx.call.OP, r.applied))
                reasons.add(r.reason)
        # the wide ops both applied and failed: the comparison has teeth
        assert {(130, True), (130, False), (131, True), (131, False)} <= outcomes
        assert "the seller holds none of the item" in reasons
        for h in (1, 7, led.height):  # wide rows name their whole access sets
            assert led.materializer.touches(h).root == led.header(h).touch_root


def test_slices_walks_and_checkpoints(tmp_path: Path) -> None:
    """The compiled walk equals its slow twin over the stored wide rows, with and without
    checkpoints; states stay exact after a checkpoint policy (the running replay's wide path)
    and after a reopen (the index rebuilt from wide section records)."""
    led, blocks = chain(tmp_path / "c", seed=3, blocks=16)
    rng = random.Random(3)
    refs = [replay_chain(led.genesis, blocks[:h])[0] for h in range(len(blocks) + 1)]
    with led:
        for _ in range(12):
            a, h = rng.choice(KEYS).account, rng.randrange(len(blocks) + 1)
            rows = stored_rows(led.store, led.genesis, h, led.materializer.width)
            slow = python_closure(rows, {a: end_of(h)})
            assert led.slice(a, h, use_checkpoints=False) == [unpack_position(p) for p in slow]
        assert led.run_checkpoint_policy(ll.CheckpointPolicy.epochs(every=4)) > 0
        for _ in range(20):
            a, h = rng.choice(KEYS).account, rng.randrange(len(blocks) + 1)
            assert led.state(a, h) == refs[h][a]
        everyone = [k.account for k in KEYS]
        assert led.states(everyone) == {a: refs[-1][a] for a in everyone}
    with ll.Ledger.open(tmp_path / "c", ops=OPS) as again:
        for kp in KEYS:
            assert again.state(kp.account) == refs[-1][kp.account]
        h = again.height
        assert again.materializer.touches(h).root == again.header(h).touch_root


def test_batch_states_in_worker_processes(tmp_path: Path) -> None:
    led, blocks = chain(tmp_path / "c", seed=4)
    with led:
        ref, _ = replay_chain(led.genesis, blocks)
        accounts = [k.account for k in KEYS]
        assert led.states(accounts, executor="process", workers=2) == {a: ref[a] for a in accounts}


def test_light_clients_verify_answers_with_wide_ops(tmp_path: Path) -> None:
    led, _ = chain(tmp_path / "c", seed=5)
    with led:
        lc = ll.LightClient(led.genesis, ops=OPS)
        lc.extend([led.header(h) for h in range(1, led.height + 1)])
        seen: set[int] = set()
        for kp in KEYS[1:]:
            answer = prove_state(led, kp.account)
            seen |= {
                ll.Transaction.from_bytes(bytes.fromhex(t["tx"])).call.OP
                for t in answer["proof"]["txs"]
            }
            verified = lc.verify_state(answer)
            assert verified.state == led.state(kp.account)
            forged = {**answer, "balances": {"0": verified.state.balances.get(0, 0) + 1}}
            with pytest.raises(ll.VerificationError):
                lc.verify_state(forged)
        assert {130, 131} <= seen


def test_careless_wide_calls_and_specs_are_typed_errors(tmp_path: Path) -> None:
    a = KEYS[1].account
    for payees in ((), tuple((a, 1) for _ in range(7))):  # 0 or 7 payees
        with pytest.raises(ll.InvalidTransaction, match="payees"):
            ll.sign(KEYS[1], 0, Split(0, payees), "payments")  # type: ignore[arg-type]
    with pytest.raises(ll.InvalidTransaction):  # 2 + 1 payee bytes short
        Split.unpack(Split(0, ((a, 1),)).pack()[:-1])
    with pytest.raises(ll.InvalidTransaction, match="basis points"):
        Sale(a, a, a, ITEM, 0, 10, 9_000, 2_000).check(genesis(), a)
    with pytest.raises(ll.InvalidOpSpec, match="width"):
        attrs.evolve(payments.OPS[0], width=9)
    with pytest.raises(ll.InvalidOpSpec, match="unsealed"):
        attrs.evolve(payments.OPS[0], sealable=True)
    with ll.Ledger.create(tmp_path / "c", genesis(), ops=OPS) as led:
        for bad in (
            Split(0, ((a, MAX), (a, 1))),  # more than MAX in all
            Split(7, ((a, 1),)),  # no such asset
        ):
            tx = ll.sign(KEYS[2], 0, bad, "payments")  # type: ignore[arg-type]
            with pytest.raises(ll.InvalidTransaction):
                led.check_transaction(tx)
        assert led.height == 0


def test_private_calls_on_a_wide_chain(tmp_path: Path) -> None:
    """Private transactions on a chain of width-7 rows: the envelope's row, the opened call's
    row and a failed call's row are all 7 accounts wide, and replay sees the same as the
    reference for readers, while outsiders are told what blocks them."""
    a, b, c = KEYS[1], KEYS[2], KEYS[3]
    with ll.Ledger.create(tmp_path / "c", genesis(), ops=OPS) as led:
        pay = ll.private(
            a, nonce=0, call=ll.Transfer(c.account, 0, 400), recipients=[a.public_key, c.public_key]
        )
        sneaky = ll.private(
            a,
            nonce=1,
            call=ll.Transfer(c.account, 0, 5),
            recipients=[a.public_key, c.public_key],
            access=[a.account, b.account],
        )
        split = ll.sign(c, 0, Split(0, ((a.account, 1), (b.account, 2))), "payments")  # type: ignore[arg-type]
        block = led.propose([pay, sneaky, split], ISSUER)
        led.append(block)
        insider = ll.Keyring([a, c])
        ref, receipts = replay_chain(led.genesis, [block], insider)
        for kp in (a, b, c):
            assert led.state(kp.account, keyring=insider) == ref[kp.account]
        for tx in (pay, sneaky, split):
            r = led.receipt(tx.id, keyring=insider)
            assert (r.applied, r.reason) == receipts[tx.id]
        assert led.receipt(sneaky.id, keyring=insider).reason == (
            "the private call exceeds its declared access set"
        )
        assert led.receipt(split.id, keyring=insider).applied
        with pytest.raises(ll.PrivateStateUnavailable) as err:
            led.state(c.account)
        assert pay.id in err.value.blocking
