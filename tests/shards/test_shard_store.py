"""The per-shard store: a shard's section writer and its rollback, directly on a real LMDB
shard environment (the crash tests in ``tests/test_store.py`` drive them through a ledger)."""

from __future__ import annotations

from pathlib import Path

import lazyledger as ll
from lazyledger.shards import pack_position, reader
from lazyledger.shards.store import Section, rollback, write_sections
from lazyledger.tables import SHARD_HEAD, SHARD_INFO
from lazyledger.workloads import Workload


def test_rollback_drops_exactly_the_sections_above_the_head(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=12, n_shards=1, seed=4)
    with ll.Ledger.create(tmp_path / "c", wl.genesis()) as led:
        list(wl.blocks(led, 2, 6))
        env = led.store.shards[0]
        kept = [reader.section_bytes(led.store, h, 0) for h in (1, 2)]
        before = led.replay_all()
        private = wl.transactions(3)
        extra = [Section(h, 0, private, b"record %d" % h, (0, 2)) for h in (3, 4, 5)]
        write_sections(env, extra)
        assert reader.hosted(led.store, pack_position(4, 0, 2)) == private[2]
        assert [h for h, _, _ in reader.records(led.store, 0, 9)] == [1, 2, 3, 4, 5]
        rollback(env, 2)
        assert [reader.section_bytes(led.store, h, 0) for h in (1, 2)] == kept
        for h in (3, 4, 5):
            assert reader.section_bytes(led.store, h, 0) is None
        assert [h for h, _, _ in reader.records(led.store, 0, 9)] == [1, 2]
        with env.read() as txn:
            assert env.get_field(txn, SHARD_INFO, SHARD_HEAD) == 2
            assert txn.get(pack_position(4, 0, 2).to_bytes(8, "big"), db=env.db["hosted"]) is None
        rollback(env, 2)  # nothing above the head: a no-op
        assert led.height == 2 and led.replay_all() == before


def test_the_reader_gives_records_in_global_order(tmp_path: Path) -> None:
    wl = Workload("zipf", n_accounts=40, n_shards=4, seed=5)
    with ll.Ledger.create(tmp_path / "c", wl.genesis()) as led:
        list(wl.blocks(led, 5, 30))
        found = reader.records(led.store, 1, 4)
        keys = [(h, s) for h, s, _ in found]
        assert keys == sorted(keys) and {h for h, _ in keys} == {2, 3, 4}
        for h in range(1, 6):
            for s in range(4):
                raw = reader.section_bytes(led.store, h, s)
                assert (raw is not None) == (led.header(h).shard_counts[s] > 0)
                assert ((h, s) in keys) == (1 < h <= 4 and raw is not None)
