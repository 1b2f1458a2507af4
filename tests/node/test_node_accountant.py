"""The accountant answer and the light client: honest answers verify and match local
materialisation; tampered ones are refused with a typed error."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import lazyledger as ll
from lazyledger.client import (
    BadHeader,
    BadProof,
    HeaderChain,
    IncompleteSlice,
    MalformedAnswer,
    StateMismatch,
    Unverifiable,
    VerificationError,
    verify_state,
)
from lazyledger.node.accountant import prove_state
from lazyledger.workloads import Workload

AUTH = ll.Keypair.from_seed(b"\x01" * 32)
A, B, C, D = (ll.Keypair.from_seed(bytes([i]) * 32) for i in (2, 3, 4, 5))


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ll.Ledger]:
    """Four blocks of transfers among A, B, C, D (D only ever receives)."""
    g = ll.Genesis(
        chain_id="acct",
        n_shards=3,
        authorities=[AUTH.public_key],
        assets={0: AUTH.account},
        balances={A.account: {0: 1_000}, B.account: {0: 500}, C.account: {0: 50}},
    )
    nonces: dict[bytes, int] = {}

    def tx(kp: ll.Keypair, to: ll.Keypair, amount: int) -> ll.Transaction:
        n = nonces.get(kp.account, 0)
        nonces[kp.account] = n + 1
        return ll.transfer(kp, nonce=n, to=to.account, asset=0, amount=amount)

    with ll.Ledger.create(tmp_path / "acct", g) as led:
        for batch in (
            [tx(A, B, 100), tx(C, D, 10)],
            [tx(B, C, 300), tx(A, D, 1)],
            [tx(C, A, 200), tx(B, D, 5), tx(C, D, 10_000)],  # the last one fails: overdraft
            [tx(A, B, 7)],
        ):
            led.append(led.propose(batch, AUTH))
        yield led


def trusted(led: ll.Ledger) -> dict[int, ll.Header]:
    return {h: led.header(h) for h in range(1, led.height + 1)}


def test_honest_answers_verify_and_match(chain: ll.Ledger) -> None:
    for kp in (A, B, C, D):
        for h in range(chain.height + 1):
            v = verify_state(prove_state(chain, kp.account, h), trusted(chain), chain.genesis)
            assert v.state == chain.state(kp.account, h)
            assert len(chain.slice(kp.account, h, use_checkpoints=False)) == v.slice_txs


def test_header_chain_is_a_trusted_source(chain: ll.Ledger) -> None:
    hc = HeaderChain(chain.genesis)
    hc.extend([chain.header(h) for h in range(1, chain.height + 1)])
    assert verify_state(prove_state(chain, B.account), hc, chain.genesis).state.balances
    with pytest.raises(BadHeader):
        HeaderChain(chain.genesis).extend([chain.header(2)])  # skips block 1


def tampered(chain: ll.Ledger, account: bytes = B.account) -> dict[str, Any]:
    return copy.deepcopy(prove_state(chain, account))


def refused(chain: ll.Ledger, answer: dict[str, Any], error: type[VerificationError]) -> None:
    with pytest.raises(error) as info:
        verify_state(answer, trusted(chain), chain.genesis)
    assert isinstance(info.value, ll.LedgerError) and str(info.value)


def test_changed_balance_is_refused(chain: ll.Ledger) -> None:
    answer = tampered(chain)
    answer["balances"]["0"] += 1
    refused(chain, answer, StateMismatch)


def test_missing_debit_is_refused_even_with_a_consistent_lie(chain: ll.Ledger) -> None:
    answer = tampered(chain)
    txs = answer["proof"]["txs"]
    debit = next(
        i
        for i, t in enumerate(txs)
        if ll.Transaction.from_bytes(bytes.fromhex(t["tx"])).sender == B.account
    )
    del txs[debit]
    refused(chain, answer, IncompleteSlice)
    # An accountant that also lies about the state is still caught by the nonce discipline.
    answer["balances"]["0"] += 300
    answer["nonce"] -= 1
    refused(chain, answer, IncompleteSlice)


def test_missing_credit_is_refused(chain: ll.Ledger) -> None:
    answer = tampered(chain, D.account)
    txs = answer["proof"]["txs"]
    senders = [ll.Transaction.from_bytes(bytes.fromhex(t["tx"])).sender for t in txs]
    # A's last transaction in D's slice is its payment to D: dropping it keeps A's nonces
    # contiguous; D's touch proof (and A's) no longer reaches the header's touch_root.
    del txs[len(senders) - 1 - senders[::-1].index(A.account)]
    refused(chain, answer, IncompleteSlice)
    answer["balances"]["0"] -= 1  # even with the balance adjusted to match
    refused(chain, answer, IncompleteSlice)
    answer = tampered(chain, D.account)
    del answer["proof"]["txs"][0]  # C's first payment to D: C's nonces now have a gap
    refused(chain, answer, IncompleteSlice)


def test_wrong_proof_is_refused(chain: ll.Ledger) -> None:
    answer = tampered(chain)
    path = next(t for t in answer["proof"]["txs"] if t["path"])["path"]
    path[0] = bytes(32).hex()
    refused(chain, answer, BadProof)
    answer = tampered(chain)
    answer["proof"]["txs"][0]["position"][2] += 1
    refused(chain, answer, BadProof)


def test_forged_transaction_is_refused(chain: ll.Ledger) -> None:
    answer = tampered(chain)
    raw = bytearray(bytes.fromhex(answer["proof"]["txs"][0]["tx"]))
    raw[-70] ^= 1  # inside the amount
    answer["proof"]["txs"][0]["tx"] = raw.hex()
    refused(chain, answer, BadProof)


def test_untrusted_or_forged_header_is_refused(chain: ll.Ledger) -> None:
    answer = tampered(chain)
    header = ll.Header.from_bytes(bytes.fromhex(answer["proof"]["headers"][0]))
    forged = attrs.evolve(header, proposer=A.public_key)
    forged = attrs.evolve(forged, signature=A.sign(forged.body))
    answer["proof"]["headers"][0] = forged.to_bytes().hex()
    refused(chain, answer, BadHeader)
    other = trusted(chain)
    other[chain.height] = attrs.evolve(other[chain.height], parent=bytes(32))
    with pytest.raises(BadHeader):
        verify_state(prove_state(chain, B.account), other, chain.genesis)
    answer = tampered(chain)
    answer["proof"]["genesis_id"] = bytes(32).hex()
    refused(chain, answer, BadHeader)


def test_malformed_answers_are_refused(chain: ll.Ledger) -> None:
    for broken in ({}, {"account": "zz"}, {**prove_state(chain, B.account), "proof": None}):
        refused(chain, broken, MalformedAnswer)


def test_private_transactions_are_unverifiable(tmp_path: Path) -> None:
    g = ll.Genesis("p", 2, [AUTH.public_key], {0: AUTH.account}, {A.account: {0: 100}})
    with ll.Ledger.create(tmp_path / "p", g, keyring=ll.Keyring([A])) as led:
        tx = ll.private(A, nonce=0, call=ll.Transfer(B.account, 0, 5), recipients=[A.public_key])
        led.append(led.propose([tx], AUTH))
        answer = prove_state(led, B.account)  # an insider accountant can materialise it
        with pytest.raises(Unverifiable):
            verify_state(answer, trusted(led), g)
        led.keyring = ll.Keyring()
        with pytest.raises(ll.PrivateStateUnavailable):  # an outsider node says why it cannot
            prove_state(led, B.account)


@pytest.mark.parametrize("shape", ["uniform", "amm", "adversarial"])
def test_workloads_verify_like_replay_all(tmp_path: Path, shape: str) -> None:
    wl = Workload(shape, n_accounts=24, n_shards=4, seed=7)
    with ll.Ledger.create(tmp_path / shape, wl.genesis()) as led:
        for _ in wl.blocks(led, 6, 30):
            pass
        everyone = led.replay_all()
        headers = trusted(led)
        for kp in wl.keys[:8]:
            v = verify_state(prove_state(led, kp.account), headers, led.genesis)
            assert v.state == everyone[kp.account]
