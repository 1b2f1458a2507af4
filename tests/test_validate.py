"""Bad input gets a typed error naming the problem, and leaves the store unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs
import pytest

import lazyledger as ll
from lazyledger.shards import shard_of
from lazyledger.shards.merkle import root
from lazyledger.store import TABLES


def fingerprint(led: ll.Ledger) -> str:
    """A digest of every key and value in every table of every environment but the cache."""
    h = hashlib.blake2b()
    for env in [led.store.meta, *led.store.shards]:
        with env.read() as txn:
            for t in TABLES:
                if t.env == env.kind:
                    for k, v in txn.cursor(env.db[t.name]):
                        h.update(k + b"=" + v)
    return h.hexdigest()


def resign(led: ll.Ledger, block: ll.Block, kp: ll.Keypair, **changes: object) -> ll.Block:
    """``block`` with header fields changed, roots recomputed, and signed again."""
    sections = changes.pop("sections", block.sections)
    assert isinstance(sections, tuple)
    header = attrs.evolve(
        block.header,
        shard_roots=tuple(root([t.id for t in s]) for s in sections),
        shard_counts=tuple(len(s) for s in sections),
        **changes,
    )
    header = attrs.evolve(header, signature=kp.sign(header.body))
    return ll.Block(header, sections)


@pytest.fixture
def chain(ledger: ll.Ledger, keys: list[ll.Keypair]) -> ll.Ledger:
    a = keys[0]
    ledger.append(
        ledger.propose([ll.transfer(a, nonce=0, to=keys[2].account, asset=0, amount=1)], a)
    )
    return ledger


def _move(
    block: ll.Block, tx: ll.Transaction, to_shard: int
) -> tuple[tuple[ll.Transaction, ...], ...]:
    return tuple((tx,) if s == to_shard else () for s in range(len(block.sections)))


CASES: dict[str, tuple[Callable[[ll.Ledger, list[ll.Keypair]], ll.Block | bytes], str]] = {}


Maker = Callable[[ll.Ledger, list[ll.Keypair]], ll.Block | bytes]


def case(match: str) -> Callable[[Maker], Maker]:
    def register(f: Maker) -> Maker:
        CASES[f.__name__] = (f, match)
        return f

    return register


@case("bad signature")
def tampered_tx_signature(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    tx = ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5)
    bad = ll.Transaction(
        tx.chain_id, tx.public_key, tx.nonce, ll.Transfer(k[1].account, 0, 6), tx.signature
    )
    return led.propose([bad], k[0])


@case("nonce 5, expected 1")
def wrong_nonce(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.transfer(k[0], nonce=5, to=k[1].account, asset=0, amount=5)], k[0])


@case("nonce 1, expected 2")
def repeated_nonce(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    tx = ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5)
    return led.propose([tx, tx], k[0])


@case("sender belongs to shard")
def wrong_shard_section(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    tx = ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5)
    block = led.propose([tx], k[0])
    wrong = (shard_of(k[0].account, 4) + 1) % 4
    return resign(led, block, k[0], sections=_move(block, tx, wrong))


@case("not an authority")
def non_authority_proposer(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([], k[1])


@case("bad proposer signature")
def tampered_header_signature(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    block = led.propose([], k[0])
    return ll.Block(attrs.evolve(block.header, signature=bytes(64)), block.sections)


@case("is before its parent's")
def dated_before_its_parent(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    block = led.propose([], k[0])
    return resign(led, block, k[0], time_ms=led.header(led.height).time_ms - 1)


@case("unknown asset 9")
def unknown_asset(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.transfer(k[0], nonce=1, to=k[1].account, asset=9, amount=5)], k[0])


@case("not its issuer")
def mint_by_non_issuer(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.mint(k[0], nonce=1, to=k[0].account, asset=1, amount=5)], k[0])


@case("amount 0 outside")
def zero_amount(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=0)], k[0])


@case("outside 1..")
def amount_above_max(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose(
        [ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=ll.MAX + 1)], k[0]
    )


@case("no pool")
def swap_unknown_pool(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.swap(k[0], nonce=1, pool=b"\x01" * 32, asset_in=0, amount_in=5)], k[0])


@case("does not trade asset 3")
def swap_wrong_asset(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    return led.propose([ll.swap(k[0], nonce=1, pool=b"\x77" * 32, asset_in=3, amount_in=5)], k[0])


@case("bound to chain 'other'")
def other_chain(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    tx = ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5, chain_id="other")
    return led.propose([tx], k[0])


@case("does not match its Merkle root")
def wrong_root(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    block = led.propose([ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5)], k[0])
    roots = tuple(bytes(32) for _ in block.header.shard_roots)
    header = attrs.evolve(block.header, shard_roots=roots)
    return ll.Block(attrs.evolve(header, signature=k[0].sign(header.body)), block.sections)


@case("is not the head")
def wrong_parent(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    block = led.propose([], k[0])
    return resign(led, block, k[0], parent=bytes(32))


@case("expected 2")
def wrong_height(led: ll.Ledger, k: list[ll.Keypair]) -> ll.Block:
    block = led.propose([], k[0])
    return resign(led, block, k[0], height=5)


@case("bad magic")
def garbage_bytes(led: ll.Ledger, k: list[ll.Keypair]) -> bytes:
    return b"\x00garbage" * 10


@case("truncated")
def truncated_bytes(led: ll.Ledger, k: list[ll.Keypair]) -> bytes:
    return led.propose(
        [ll.transfer(k[0], nonce=1, to=k[1].account, asset=0, amount=5)], k[0]
    ).to_bytes()[:-30]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_blocks_are_refused_and_change_nothing(
    chain: ll.Ledger, keys: list[ll.Keypair], name: str
) -> None:
    make, match = CASES[name]
    bad = make(chain, keys)
    before = fingerprint(chain)
    with pytest.raises(ll.InvalidBlock, match=match):
        chain.append(bad)
    assert fingerprint(chain) == before and chain.height == 1
    # and the chain still accepts a good block afterwards
    a = keys[0]
    chain.append(chain.propose([ll.transfer(a, nonce=1, to=keys[1].account, asset=0, amount=2)], a))
    assert chain.state(keys[1].account).balances == {0: 2, 1: 500}


def test_bad_transaction_in_block_is_both_kinds(chain: ll.Ledger, keys: list[ll.Keypair]) -> None:
    with pytest.raises(ll.InvalidTransaction):
        chain.append(wrong_nonce(chain, keys))


def test_pool_cannot_send(keys: list[ll.Keypair], tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool_key = ll.Keypair.from_seed(b"\x44" * 32)
    a = keys[0]
    g = ll.Genesis(
        "t", 2, [a.public_key], {0: a.account, 1: a.account}, {}, {pool_key.account: (0, 1)}
    )
    with ll.Ledger.create(tmp_path / "x", g) as led:
        tx = ll.transfer(pool_key, nonce=0, to=a.account, asset=0, amount=1)
        with pytest.raises(ll.InvalidBlock, match="pool account cannot send"):
            led.append(led.propose([tx], a))
    bad = attrs.evolve(g, pools={pool_key.account: (0, 0)})
    with pytest.raises(ll.InvalidGenesis, match="distinct"):
        ll.Ledger.create(tmp_path / "y", bad)


def test_overdraft_is_accepted_and_fails_later(chain: ll.Ledger, keys: list[ll.Keypair]) -> None:
    """Validators never execute: an overdraft is a valid block."""
    b = keys[1]
    tx = ll.transfer(b, nonce=0, to=keys[0].account, asset=0, amount=10**9)
    chain.append(chain.propose([tx], keys[0]))
    receipt = chain.receipt(tx.id)
    assert receipt == ll.Receipt(False, "insufficient balance")
    assert receipt.position == chain.position(tx.id)
    assert chain.state(b.account).nonce == 1


def test_mempool_admission(chain: ll.Ledger, keys: list[ll.Keypair]) -> None:
    a = keys[0]
    chain.check_transaction(ll.transfer(a, nonce=1, to=keys[1].account, asset=0, amount=1))
    with pytest.raises(ll.InvalidTransaction, match="already used"):
        chain.check_transaction(ll.transfer(a, nonce=0, to=keys[1].account, asset=0, amount=1))
    with pytest.raises(ll.InvalidTransaction, match="unknown asset"):
        chain.check_transaction(ll.transfer(a, nonce=1, to=keys[1].account, asset=5, amount=1))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_shards": 0}, "n_shards"),
        ({"authorities": []}, "no authority"),
        ({"balances": {b"\x01" * 32: {7: 1}}}, "unknown asset"),
        ({"balances": {b"\x01" * 32: {0: ll.MAX + 1}}}, "out of range|outside"),
        ({"chain_id": ""}, "chain id"),
        ({"max_blob_bytes": 0}, "max_blob_bytes"),
        ({"max_blob_bytes": True}, "max_blob_bytes"),
        ({"max_blob_bytes": 2**64}, "out of range"),
    ],
)
def test_bad_genesis(genesis: ll.Genesis, tmp_path, change: dict[str, object], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ll.InvalidGenesis, match=match):
        ll.Ledger.create(tmp_path / "g", attrs.evolve(genesis, **change))
    assert not (tmp_path / "g").exists()


def test_blocks_carry_non_decreasing_times(chain: ll.Ledger, keys: list[ll.Keypair]) -> None:
    first = chain.header(1)
    assert first.time_ms > 0
    block = chain.propose([], keys[0])
    assert block.header.time_ms >= first.time_ms
    assert ll.Header.from_bytes(block.header.to_bytes()) == block.header
    same = resign(chain, block, keys[0], time_ms=first.time_ms)  # equal to the parent's: valid
    chain.append(same)
    assert chain.header(2).time_ms == first.time_ms
