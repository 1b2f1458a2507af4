"""Private transactions: insiders replay them, outsiders are told exactly what blocks them."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import Workload


def private_chain(
    tmp_path: Path, seed: int, share: float = 0.15
) -> tuple[ll.Ledger, Workload, list[ll.Block]]:
    wl = Workload(
        "clusters",
        n_accounts=30,
        n_shards=3,
        seed=seed,
        cluster_size=5,
        bridge=0.05,
        private_share=share,
    )
    led = ll.Ledger.create(tmp_path / f"p{seed}", wl.genesis())
    return led, wl, list(wl.blocks(led, 8, 25))


def private_ids(blocks: list[ll.Block]) -> dict[tuple[int, int, int], bytes]:
    return {
        pos: tx.id
        for b in blocks
        for pos, tx in b.transactions()
        if isinstance(tx.call, ll.Private)
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_insiders_outsiders_and_partial_keyrings(tmp_path: Path, seed: int) -> None:
    led, wl, blocks = private_chain(tmp_path, seed)
    everyone = ll.Keyring(wl.keys)
    truth, _ = replay_chain(led.genesis, blocks, everyone)
    privates = private_ids(blocks)
    assert privates, "the workload must contain private transactions"
    rng = random.Random(seed)
    partial_keys = rng.sample(wl.keys, 10)
    partial = ll.Keyring(partial_keys)
    readable_by_partial = {
        tx.id
        for b in blocks
        for _, tx in b.transactions()
        if isinstance(tx.call, ll.Private) and partial.can_open(tx.call)
    }
    with led:
        for h in (1, led.height // 2, led.height):  # the map from index rows (access sets)
            assert led.materializer.touches(h).root == led.header(h).touch_root
        led.checkpoint_min_rows = 1  # checkpoints must not leak private information
        for kp in wl.keys:
            a = kp.account
            assert led.state(a, keyring=everyone) == truth[a]
        for keyring, readable in ((ll.Keyring(), set()), (partial, readable_by_partial)):
            for kp in wl.keys:
                a = kp.account
                needed = [privates[p] for p in led.slice(a, use_checkpoints=False) if p in privates]
                blocking = [i for i in needed if i not in readable]
                if not blocking:
                    assert led.state(a, keyring=keyring) == truth[a]
                    continue
                with pytest.raises(ll.PrivateStateUnavailable) as err:
                    led.state(a, keyring=keyring)
                assert err.value.blocking == blocking and err.value.account == a
                known = err.value.last_known_height
                assert known is not None and known < led.height
                ref_known, _ = replay_chain(led.genesis, blocks[:known], everyone)
                assert led.state(a, known, keyring=keyring) == ref_known.get(
                    a, ll.AccountState(0, {})
                )
                with pytest.raises(ll.PrivateStateUnavailable):
                    led.state(a, known + 1, keyring=keyring)
                report = led.cost(a, keyring=keyring)
                assert report.unreadable == blocking and not report.materialisable
        with pytest.raises(ll.PrivateStateUnavailable):
            led.replay_all()
        assert led.replay_all(keyring=everyone) == truth


def test_private_receipts_and_nonces(
    tmp_path: Path, keys: list[ll.Keypair], genesis: ll.Genesis
) -> None:
    a, b, c, _ = keys
    with ll.Ledger.create(tmp_path / "x", genesis) as led:
        pay = ll.private(
            a, nonce=0, call=ll.Transfer(c.account, 0, 400), recipients=[a.public_key, c.public_key]
        )
        over = ll.private(
            a, nonce=1, call=ll.Transfer(b.account, 0, 10**6), recipients=[a.public_key]
        )
        led.append(led.propose([pay, over], a))
        insider = ll.Keyring([c])
        assert led.state(c.account, keyring=insider).balances == {0: 400}
        assert led.receipt(pay.id, keyring=insider).applied
        with pytest.raises(ll.PrivateStateUnavailable):
            led.receipt(over.id, keyring=insider)  # sealed to a only
        assert led.receipt(over.id, keyring=ll.Keyring([a])).reason == "insufficient balance"
        assert led.state(a.account, keyring=ll.Keyring([a])) == ll.AccountState(2, {0: 600})
        # the envelope is public: outsiders learn the access set but not amounts
        assert led.cost(c.account).private_txs == 1
        with pytest.raises(ll.PrivateStateUnavailable, match="cannot read") as err:
            led.state(c.account)
        assert err.value.blocking == [pay.id] and err.value.last_known_height == 0


def test_invalid_private_calls_fail_the_same_for_every_reader(
    tmp_path: Path, keys: list[ll.Keypair], genesis: ll.Genesis
) -> None:
    a, b, c, _ = keys
    both = [a.public_key, c.public_key]
    with ll.Ledger.create(tmp_path / "x", genesis) as led:
        sneaky = ll.private(
            a,
            nonce=0,
            call=ll.Transfer(c.account, 0, 5),
            recipients=both,
            access=[a.account, b.account],
        )
        mint = ll.private(
            a, nonce=1, call=ll.Mint(c.account, 1, 5), recipients=both
        )  # a is not 1's issuer
        led.append(led.propose([sneaky, mint], a))
        for reader in (ll.Keyring([a]), ll.Keyring([c])):
            r = led.receipt(sneaky.id, keyring=reader)
            assert r.reason == "the private call exceeds its declared access set"
            assert led.receipt(mint.id, keyring=reader).reason == "the private call is invalid"
        assert led.state(c.account, keyring=ll.Keyring([c])).balances == {}


def test_tampering_is_caught(tmp_path: Path, keys: list[ll.Keypair], genesis: ll.Genesis) -> None:
    a, _, c, _ = keys
    tx = ll.private(a, nonce=0, call=ll.Transfer(c.account, 0, 5), recipients=[c.public_key])
    env = tx.call
    assert isinstance(env, ll.Private)
    flipped = env.ciphertext[:-1] + bytes([env.ciphertext[-1] ^ 1])
    forged = attrs.evolve(env, ciphertext=flipped)
    with ll.Ledger.create(tmp_path / "x", genesis) as led:
        unsigned = ll.Transaction(tx.chain_id, tx.public_key, tx.nonce, forged, tx.signature)
        with pytest.raises(ll.InvalidBlock, match="bad signature"):
            led.append(led.propose([unsigned], a))  # a third party cannot change it
        resigned = ll.sign(a, 0, forged)  # the sender itself sends garbage
        wrong_keys = ll.sign(a, 1, attrs.evolve(env, recipients=((c.public_key, bytes(48)),)))
        led.append(led.propose([resigned, wrong_keys], a))
        assert (
            led.receipt(resigned.id, keyring=ll.Keyring([c])).reason
            == "the private call is invalid"
        )
        with pytest.raises(ll.PrivateStateUnavailable):  # a wrapped key that does not open
            led.receipt(wrong_keys.id, keyring=ll.Keyring([c]))


def test_envelope_validation(ledger: ll.Ledger, keys: list[ll.Keypair]) -> None:
    a, _, c, _ = keys
    tx = ll.private(a, nonce=0, call=ll.Transfer(c.account, 0, 5), recipients=[c.public_key])
    env = tx.call
    assert isinstance(env, ll.Private)
    bad = [
        attrs.evolve(env, accounts=()),
        attrs.evolve(env, accounts=(a.account, a.account)),
        attrs.evolve(env, recipients=()),
        attrs.evolve(env, recipients=env.recipients * 2),
        attrs.evolve(env, ciphertext=b"short"),
    ]
    for envelope in bad:
        with pytest.raises(ll.InvalidTransaction):
            ledger.check_transaction(ll.sign(a, 0, envelope))
    with pytest.raises(ll.InvalidTransaction):
        ll.Transaction.from_bytes(tx.to_bytes()[:-70])


def test_cost_report_and_policy(tmp_path: Path) -> None:
    led, wl, blocks = private_chain(tmp_path, 4, share=0.1)
    with led:
        a = wl.keys[0].account
        report = led.cost(a, keyring=ll.Keyring(wl.keys))
        assert report.slice_txs == len(led.slice(a))
        assert report.slice_shards == len({p[1] for p in led.slice(a)})
        assert report.private_txs == len([p for p in led.slice(a) if p in private_ids(blocks)])
        assert report.materialisable and report.estimated_seconds > 0
        assert ll.PayeePolicy(max_slice_txs=10**6).accepts(report)
        with pytest.raises(ll.PaymentRefused, match="slice of"):
            ll.PayeePolicy(max_slice_txs=report.slice_txs - 1).check(report)
        outsider = led.cost(a)
        if outsider.private_txs:
            assert not ll.PayeePolicy().accepts(outsider)


def test_keyring_survives_reopen(
    tmp_path: Path, keys: list[ll.Keypair], genesis: ll.Genesis
) -> None:
    a, _, c, _ = keys
    path = tmp_path / "x"
    with ll.Ledger.create(path, genesis) as led:
        tx = ll.private(a, nonce=0, call=ll.Transfer(c.account, 0, 9), recipients=[c.public_key])
        led.append(led.propose([tx], a))
    with ll.Ledger.open(path, keyring=ll.Keyring([c])) as led:
        assert led.state(c.account).balances == {0: 9}


def test_a_recipient_locked_out_by_its_sender_is_told(
    tmp_path: Path, keys: list[ll.Keypair], genesis: ll.Genesis
) -> None:
    """The issue's attack: the sender corrupts one listed recipient's wrapped key and re-signs.
    The other readers apply the call; the locked-out recipient's cost report names it
    unreadable, so a payee policy refuses it instead of waving it through."""
    a, b, c, d = keys
    tx = ll.private(
        a,
        nonce=0,
        call=ll.Transfer(c.account, 0, 5),
        recipients=[a.public_key, c.public_key, d.public_key],
    )
    env = tx.call
    assert isinstance(env, ll.Private)
    entries = list(env.recipients)
    key, wrapped = entries[1]
    assert key == c.public_key
    entries[1] = (key, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    attack = ll.sign(a, 0, attrs.evolve(env, recipients=tuple(entries)))
    honest = ll.private(
        b, nonce=0, call=ll.Transfer(c.account, 1, 7), recipients=[b.public_key, c.public_key]
    )
    with ll.Ledger.create(tmp_path / "x", genesis) as led:
        led.append(led.propose([attack, honest], a))
        others = ll.Keyring([d, b])  # another listed reader opens it and applies it
        assert led.receipt(attack.id, keyring=others).applied
        assert led.state(c.account, keyring=others).balances == {0: 5, 1: 7}
        locked_out = ll.Keyring([c])
        with pytest.raises(ll.PrivateStateUnavailable):
            led.state(c.account, keyring=locked_out)
        report = led.cost(c.account, keyring=locked_out)
        assert report.private_txs == 2
        assert report.unreadable == [attack.id]  # the honest payment opens; the attack does not
        assert not report.materialisable
        with pytest.raises(ll.PaymentRefused, match="1 private dependencies this keyring"):
            ll.PayeePolicy(max_unreadable=0).check(report)
        # an untampered envelope with the same recipients is readable by c: nothing else changed
        assert led.cost(c.account, keyring=ll.Keyring([c, d])).unreadable == []
        assert led.cost(b.account, keyring=ll.Keyring([b])).unreadable == []
