"""Embedder-defined ops (``lazyledger.ops.examples``: sweep, burn) on a real ledger: declared in
genesis, validated, sliced, replayed through the composed kernel, equal to the reference and to
eager replay, in receipts, cost and batch states in worker processes; a ledger opened with other
ops, or a chain that does not declare them, refuses them with a typed error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.node.accountant import prove_state
from lazyledger.ops import REGISTRY
from lazyledger.ops.examples import OPS, Burn, Sweep, apply_burn

KEYS = [ll.Keypair.from_seed(bytes([40 + i]) * 32) for i in range(6)]


def genesis(ops: bool = True) -> ll.Genesis:
    return ll.Genesis(
        "embedder",
        2,
        [KEYS[0].public_key],
        {0: KEYS[0].account, 1: KEYS[1].account},
        {k.account: {0: 1_000, 1: 50} for k in KEYS},
        {},
        ops=[s.declared for s in OPS] if ops else [],
    )


def chain(path: Path, seed: int = 3, blocks: int = 12) -> tuple[ll.Ledger, list[ll.Block]]:
    led = ll.Ledger.create(path, genesis(), ops=OPS)
    rng = random.Random(seed)
    nonce = dict.fromkeys((k.account for k in KEYS), 0)
    out = []
    for _ in range(blocks):
        txs = []
        for _ in range(rng.randrange(1, 9)):
            kp = rng.choice(KEYS)
            to, asset = rng.choice(KEYS).account, rng.randrange(2)
            kind = rng.randrange(4)
            if kind == 0:
                call: object = Sweep(to, asset)
            elif kind == 1:
                call = Burn(asset, rng.choice([1, 7, 60, 2_000]))
            else:
                call = ll.Transfer(to, asset, rng.choice([1, 30, 400]))
            txs.append(ll.sign(kp, nonce[kp.account], call, "embedder"))  # type: ignore[arg-type]
            nonce[kp.account] += 1
        block = led.propose(txs, KEYS[0])
        led.append(block)
        out.append(block)
    return led, out


def test_genesis_records_the_ops_and_round_trips() -> None:
    g = genesis()
    assert g.ops == tuple(sorted(s.declared for s in OPS))
    assert ll.Genesis.from_bytes(g.to_bytes()) == g
    plain = genesis(ops=False)
    assert plain.to_bytes()[:4] == b"LLG\x02" and g.to_bytes()[:4] == b"LLG\x03"
    with pytest.raises(ll.InvalidGenesis):  # a built-in code cannot be redeclared
        ll.Ledger.create(Path("/nonexistent/never"), attrs.evolve(g, ops=[(1, b"\0" * 32)]))


def test_lazy_equals_eager_equals_reference(tmp_path: Path) -> None:
    led, blocks = chain(tmp_path / "c")
    with led:
        ref, receipts = replay_chain(led.genesis, blocks)
        assert led.replay_all() == ref
        for kp in KEYS:
            assert led.state(kp.account) == ref[kp.account]
            assert led.state(kp.account, 5) == replay_chain(led.genesis, blocks[:5])[0][kp.account]
        outcomes, reasons = set(), set()
        for block in blocks:
            for _, tx in block.transactions():
                r = led.receipt(tx.id)
                assert (r.applied, r.reason) == receipts[tx.id]
                outcomes.add((tx.call.OP, r.applied))
                reasons.add(r.reason)
        # both embedder ops both applied and failed somewhere: the comparison has teeth
        assert {(128, True), (128, False), (129, True), (129, False)} <= outcomes
        assert "nothing to sweep: the sender holds none of the asset" in reasons  # its own
        for h in (1, led.height):  # embedder rows name their access sets
            assert led.materializer.touches(h).root == led.header(h).touch_root
        report = led.cost(KEYS[1].account)
        assert report.slice_txs > 0


def test_reopen_needs_the_same_ops(tmp_path: Path) -> None:
    led, _ = chain(tmp_path / "c", blocks=3)
    head = led.head_id
    led.close()
    with pytest.raises(ll.OpsMismatch, match="missing"):
        ll.Ledger.open(tmp_path / "c")
    changed = attrs.evolve(OPS[1], apply=_other_burn)
    with pytest.raises(ll.OpsMismatch, match="not the definition"):
        ll.Ledger.open(tmp_path / "c", ops=[OPS[0], changed])
    with ll.Ledger.open(tmp_path / "c", ops=OPS) as again:  # storage untouched by the refusals
        assert again.head_id == head and again.height == 3


def _other_burn(state: ll.ops.Balances, ctx: ll.Context, call: Burn) -> ll.Status:
    return apply_burn(state, ctx, call)  # same meaning, another definition (its source)


def test_a_chain_that_does_not_declare_an_op_refuses_it(tmp_path: Path) -> None:
    REGISTRY.add(OPS[0])  # this process knows the op ...
    with ll.Ledger.create(tmp_path / "plain", genesis(ops=False)) as led:
        tx = ll.sign(KEYS[1], 0, Sweep(KEYS[2].account, 0), "embedder")  # type: ignore[arg-type]
        with pytest.raises(ll.InvalidTransaction, match="not declared by this chain"):
            led.check_transaction(tx)
        with pytest.raises(ll.InvalidBlock):
            led.append(led.propose([tx], KEYS[0]))
        assert led.height == 0


@attrs.frozen(slots=True)
class OtherSweep(Sweep):
    """Another op under sweep's code."""

    OP: ClassVar[int] = 128


def test_another_definition_under_a_taken_code_is_refused() -> None:
    REGISTRY.add(OPS[0])
    clash = attrs.evolve(OPS[0], name="other_sweep", call=OtherSweep)
    with pytest.raises(ll.OpsMismatch, match="already runs"):
        REGISTRY.add(clash)


def test_batch_states_in_worker_processes(tmp_path: Path) -> None:
    led, blocks = chain(tmp_path / "c", seed=9)
    with led:
        ref, _ = replay_chain(led.genesis, blocks)
        accounts = [k.account for k in KEYS]
        got = led.states(accounts, executor="process")
        assert got == {a: ref[a] for a in accounts}


def test_light_clients_verify_answers_with_embedder_ops(tmp_path: Path) -> None:
    """An accountant answer over a slice holding sweeps and burns (light ops) verifies, and a
    tampered balance is refused."""
    led, _ = chain(tmp_path / "c", seed=5)
    with led:
        lc = ll.LightClient(led.genesis, ops=OPS)
        lc.extend([led.header(h) for h in range(1, led.height + 1)])
        seen: set[int] = set()
        for kp in KEYS:
            answer = prove_state(led, kp.account)
            ops = {
                ll.Transaction.from_bytes(bytes.fromhex(t["tx"])).call.OP
                for t in answer["proof"]["txs"]
            }
            seen |= ops
            verified = lc.verify_state(answer)
            assert verified.state == led.state(kp.account)
            forged = {**answer, "balances": {"0": verified.state.balances.get(0, 0) + 1}}
            with pytest.raises(ll.VerificationError):
                lc.verify_state(forged)
        assert {128, 129} <= seen  # the slices did hold embedder ops


def test_an_ops_own_status_codes_are_one_meaning_per_process() -> None:
    REGISTRY.add(OPS[0])  # sweep: status 128 is "nothing to sweep ..."
    other = attrs.evolve(OPS[1], code=141, name="burn_141", call=Burn141, reasons={128: "other"})
    with pytest.raises(ll.OpsMismatch, match="status 128"):
        REGISTRY.add(other)
    with pytest.raises(ll.InvalidOpSpec):
        attrs.evolve(OPS[1], reasons={7: "a built-in status code"})
    assert REGISTRY.reason(128).startswith("nothing to sweep")


@attrs.frozen(slots=True)
class Burn141(Burn):
    """Burn under another code."""

    OP: ClassVar[int] = 141


def test_careless_ops_arguments_are_typed_errors_and_write_nothing(tmp_path: Path) -> None:
    for bad in (5, "sweep", [1, 2], OPS[:1]):
        with pytest.raises((ll.InvalidOpSpec, ll.OpsMismatch)):
            ll.Ledger.create(tmp_path / "c", genesis(), ops=bad)  # type: ignore[arg-type]
        with pytest.raises((ll.InvalidOpSpec, ll.OpsMismatch)):
            ll.LightClient(genesis(), ops=bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
