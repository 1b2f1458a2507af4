"""Canonical bytes: round trips, golden vectors, and garbage."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

import lazyledger as ll
from lazyledger.codec import MAX_TX_BYTES

KP = ll.Keypair.from_seed(b"\x01" * 32)
accounts = st.binary(min_size=32, max_size=32)
amounts = st.integers(1, ll.MAX)
assets = st.integers(0, 2**32 - 1)
calls = st.one_of(
    st.builds(ll.Transfer, accounts, assets, amounts),
    st.builds(ll.Mint, accounts, assets, amounts),
    st.builds(ll.Swap, accounts, assets, amounts, st.integers(0, ll.MAX)),
)


@settings(max_examples=200, deadline=None)
@given(call=calls, nonce=st.integers(0, 2**64 - 1), chain=st.sampled_from(["", "x", "demo-é"]))
def test_transaction_round_trip(call: ll.Transfer, nonce: int, chain: str) -> None:
    tx = ll.sign(KP, nonce, call, chain)
    again = ll.Transaction.from_bytes(tx.to_bytes())
    assert again == tx and again.id == tx.id and again.sender == KP.account


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_garbage_transactions_raise_typed_errors(data: bytes) -> None:
    with pytest.raises(ll.InvalidTransaction):
        ll.Transaction.from_bytes(data)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_garbage_blocks_raise_typed_errors(data: bytes) -> None:
    with pytest.raises(ll.InvalidBlock):
        ll.Block.from_bytes(b"LLB\x01" + data)


def test_truncations_and_extensions_are_refused() -> None:
    raw = ll.transfer(KP, nonce=3, to=b"\x02" * 32, asset=0, amount=9).to_bytes()
    for cut in range(len(raw)):
        with pytest.raises(ll.InvalidTransaction):
            ll.Transaction.from_bytes(raw[:cut])
    with pytest.raises(ll.InvalidTransaction):
        ll.Transaction.from_bytes(raw + b"\x00")
    with pytest.raises(ll.InvalidTransaction, match="limit"):
        ll.Transaction.from_bytes(raw + bytes(MAX_TX_BYTES))


def test_golden_vector() -> None:
    """Canonical bytes and ids must never change silently (Ed25519 signing is deterministic)."""
    tx = ll.transfer(KP, nonce=7, to=b"\x02" * 32, asset=1, amount=1000, chain_id="demo")
    assert tx.to_bytes().hex() == GOLDEN_TX
    assert tx.id.hex() == GOLDEN_ID


def test_block_and_genesis_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = ll.Genesis("demo", 3, [KP.public_key], {0: KP.account}, {KP.account: {0: 50}}, {})
    assert ll.Genesis.from_bytes(g.to_bytes()) == g
    with ll.Ledger.create(tmp_path / "l", g) as led:
        txs = [ll.transfer(KP, nonce=i, to=bytes([i]) * 32, asset=0, amount=1) for i in range(5)]
        block = led.propose(txs, KP)
        assert ll.Block.from_bytes(block.to_bytes()) == block
        assert ll.Header.from_bytes(block.header.to_bytes()) == block.header
        with pytest.raises(ll.InvalidBlock):
            ll.Block.from_bytes(block.to_bytes()[:-1])
        with pytest.raises(ll.InvalidGenesis):
            ll.Genesis.from_bytes(g.to_bytes()[:-3])


def test_genesis_carries_its_blob_bound() -> None:
    g = ll.Genesis("demo", 3, [KP.public_key], {0: KP.account}, {}, {})
    assert g.max_blob_bytes == 256 << 20
    small = ll.Genesis("demo", 3, [KP.public_key], {0: KP.account}, {}, {}, max_blob_bytes=1000)
    raw = small.to_bytes()
    assert raw[:4] == b"LLG\x02" and ll.Genesis.from_bytes(raw) == small
    assert raw[11:19] == (1000).to_bytes(8, "big")  # after magic, chain id and n_shards
    assert small.id != g.id  # the bound is part of the chain's identity
    with pytest.raises(ll.InvalidGenesis, match="version-2"):
        ll.Genesis.from_bytes(b"LLG\x01" + raw[4:])


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(ll.InvalidTransaction):
        ll.transfer(KP, nonce=2**64, to=b"\x02" * 32, asset=0, amount=1)
    with pytest.raises(ll.InvalidTransaction):
        ll.transfer(KP, nonce=0, to=b"\x02" * 32, asset=2**32, amount=1)
    with pytest.raises(ll.InvalidTransaction):
        ll.transfer(KP, nonce=0, to=b"\x02" * 32, asset=0, amount=2**64)


GOLDEN_TX = (
    "4c4c54010464656d6f8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f"
    "5c000000000000000701002c02020202020202020202020202020202020202020202020202020202"
    "020202020000000100000000000003e8ede67d9fe7cbff9e614916c27694ea48e7a80bac33d6330c"
    "56fa9df0995bde1752199d0065d5cadea272484b19d4af8fba2c78d2c9605614ea91c671204c780d"
)
GOLDEN_ID = "fc74f7d738db6653550128f4278fe7dfd4831480b20b701d8c024d1d9e5518ad"
