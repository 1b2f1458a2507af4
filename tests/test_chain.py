"""The chain readers below ingestion and materialisation: each answers what the ledger's own
queries answer, and missing or damaged data reads as absent or as a typed error."""

from __future__ import annotations

import pytest

import lazyledger as ll
from lazyledger.chain import Chain
from lazyledger.shards import pack_position
from lazyledger.tables import VERDICTS


def test_readers_agree_with_the_ledger(ledger: ll.Ledger, keys: list[ll.Keypair]) -> None:
    a, b, c, _ = keys
    txs = [
        ll.transfer(a, nonce=0, to=b.account, asset=0, amount=5),
        ll.private(
            b,
            nonce=0,
            call=ll.Transfer(c.account, 1, 3),
            recipients=[b.public_key, c.public_key],
        ),
    ]
    ledger.append(ledger.propose(txs, a))
    chain = Chain(ledger.store)
    assert chain.header(1) == ledger.header(1)
    for s in range(ledger.n_shards):
        assert chain.section(1, s) == ledger.section(1, s)
    for tx in txs:
        h, s, i = ledger.position(tx.id)
        assert chain.is_at(tx.id, pack_position(h, s, i))
        assert not chain.is_at(bytes(32), pack_position(h, s, i))
    h, s, i = ledger.position(txs[1].id)
    assert chain.hosted(pack_position(h, s, i)) == txs[1]  # private: stored whole
    with pytest.raises(ll.StorageError, match="hosted"):
        chain.hosted(ledger.position(txs[0].id)[0] << 32)  # a transfer is not hosted
    assert chain.job(b"\x01" * 32) is None and chain.job_terms(b"\x01" * 32) is None
    assert chain.job(b"short") is None


def test_blobs_and_verdicts(ledger: ll.Ledger) -> None:
    chain = Chain(ledger.store)
    key = ledger.put_blob(b"data")
    assert chain.blob(key) == b"data" and chain.has_blob(key)
    with pytest.raises(ll.BlobMissing):
        chain.blob(b"\x02" * 32)
    assert chain.held_blob(b"\x02" * 32) is None
    job, weights = b"\x03" * 32, b"\x04" * 32
    assert chain.verdict(job, weights) is None
    chain.put_verdict(job, weights, (1, 7, 9))
    assert chain.verdict(job, weights) == (1, 7, 9)
    cache = ledger.store.cache
    with cache.write() as txn:  # a damaged entry reads as absent (it is recomputed)
        txn.put(job + weights, b"\x00" * 5, db=cache.db[VERDICTS.name])
    assert chain.verdict(job, weights) is None
