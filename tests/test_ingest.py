"""The split Ledger: a facade keeping every public name it had, over an ingestor and a
materialiser sharing one head; the index ingestion extends block by block equals the index a
fresh handle builds from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

import lazyledger as ll
from lazyledger.ingest import Ingestor
from lazyledger.materialize.engine import Materializer
from lazyledger.workloads import Workload

PUBLIC = {
    # methods and properties of Ledger before the split (DESIGN.md's API and what the node,
    # the CLI, scale/, bench/ and tests call)
    "append", "append_many", "block", "block_blobs", "blocks", "check_transaction",
    "checkpoint_count", "close", "cost", "create", "drop_checkpoints", "get_blob", "has_blob",
    "head_id", "header", "height", "job", "job_terms", "job_transaction", "missing_blobs",
    "nonce", "open", "position", "propose", "put_blob", "readonly", "receipt", "refresh",
    "replay_all", "run_checkpoint_policy", "section", "slice", "state", "states",
    "storage_stats", "touch_proofs", "transaction", "wait_checkpoints",
    # helpers benchmarks and tests reach for
    "_account_id", "_genesis_sorted", "_index", "_sent", "_slice", "_touch_map",
}  # fmt: skip
ATTRIBUTES = {
    "blob_rule", "checkpoint_min_rows", "checkpoint_policy", "cost_model", "dense_fraction",
    "dense_min_rows", "genesis", "genesis_id", "keyring", "n_shards", "ops", "store", "validator",
}  # fmt: skip


def test_the_facade_keeps_every_name(ledger: ll.Ledger) -> None:
    for name in PUBLIC | ATTRIBUTES:
        assert hasattr(ledger, name), name
    assert isinstance(ledger.ingestor, Ingestor)
    assert isinstance(ledger.materializer, Materializer)
    assert ledger.ingestor.head is ledger.materializer.head is ledger.head


def test_settings_reach_the_materialiser(ledger: ll.Ledger) -> None:
    ledger.checkpoint_min_rows = 7
    ledger.dense_fraction, ledger.dense_min_rows = 0.5, 11
    policy = ll.CheckpointPolicy.epochs(every=3)
    ledger.checkpoint_policy = policy
    m = ledger.materializer
    assert (m.checkpoint_min_rows, m.dense_fraction, m.dense_min_rows) == (7, 0.5, 11)
    assert m.checkpoint_policy is policy and ledger.cost_model is m.cost_model


def test_a_bad_policy_is_refused_before_anything_is_created(
    tmp_path: Path, genesis: ll.Genesis
) -> None:
    with pytest.raises(ll.InvalidRequest, match="CheckpointPolicy"):
        ll.Ledger.create(tmp_path / "c", genesis, checkpoint_policy="hubs")  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
    ll.Ledger.create(tmp_path / "c", genesis).close()
    with pytest.raises(ll.InvalidRequest, match="CheckpointPolicy"):
        ll.Ledger.open(tmp_path / "c", checkpoint_policy=3)  # type: ignore[arg-type]
    ll.Ledger.open(tmp_path / "c").close()  # no handle was left open


@pytest.mark.parametrize("batch", [1, 3])
def test_the_index_extended_by_appends_equals_one_built_cold(tmp_path: Path, batch: int) -> None:
    wl = Workload("zipf", n_accounts=40, n_shards=3, seed=batch, private_share=0.1)
    with ll.Ledger.create(tmp_path / "source", wl.genesis()) as src:
        blocks = list(wl.blocks(src, 8, 25))
    path = tmp_path / "chain"

    def snapshot(led: ll.Ledger) -> dict[str, object]:
        columns, _ = led.materializer.index()
        n = columns.n
        return {
            "n": n,
            "rows": columns.rows[:n].tobytes(),
            "pos": columns.pos[:n].tolist(),
            "links": columns.links[:n].tolist(),
            "names": led.materializer.accounts.names.tobytes(),
            "sent": [led._sent(k.account, h) for k in wl.keys for h in (3, led.height)],
            "nonces": [led.nonce(k.account) for k in wl.keys],
            "positions": [led.position(tx.id) for b in blocks for _, tx in b.transactions()],
        }

    with ll.Ledger.create(path, wl.genesis()) as led:
        led.nonce(wl.keys[0].account)  # the index is built now and extended by every append
        for i in range(0, len(blocks), batch):
            led.append_many(blocks[i : i + batch])
        led.append(led.propose([], wl.issuer))  # an empty block extends the index by nothing
        warm = snapshot(led)
    with ll.Ledger.open(path) as cold:
        assert snapshot(cold) == warm
    assert warm["n"] == sum(len(list(b.transactions())) for b in blocks)
    assert warm["positions"] == [pos for b in blocks for pos, _ in b.transactions()]
