"""The per-shard store: a shard's section writer and its rollback, directly on a real LMDB
shard environment (the crash tests in ``tests/test_store.py`` drive them through a ledger)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lazyledger as ll
from lazyledger.shards import pack_position, reader
from lazyledger.shards.store import Section, Writers, rollback, write_sections
from lazyledger.tables import BODIES, HOSTED, ROWS, SHARD_HEAD, SHARD_INFO
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


def test_the_writers_store_what_one_write_per_section_stores(tmp_path: Path) -> None:
    """Sections queued while a writer is busy are written in one transaction per shard (3
    shards on 2 threads), and the stores hold what ``write_sections`` one call per section
    leaves."""
    wl = Workload("uniform", n_accounts=12, n_shards=3, seed=6)
    txs = wl.transactions(4)
    work = [Section(h, s, txs[: 1 + (h + s) % 4], b"r%d.%d" % (h, s), (0,)) for h in range(3, 40)
            for s in range(3) if (h * 7 + s) % 5]  # fmt: skip

    def contents(led: ll.Ledger) -> list[list[tuple[bytes, bytes]]]:
        out = []
        for env in led.store.shards:
            with env.read() as txn:
                out.append([(bytes(k), bytes(v)) for t in (BODIES, ROWS, HOSTED, SHARD_INFO)
                            for k, v in txn.cursor(env.db[t.name])])  # fmt: skip
        return out

    with ll.Ledger.create(tmp_path / "one", wl.genesis()) as one:
        for x in work:
            write_sections(one.store.shards[x.shard], [x])
        expected = contents(one)
    with ll.Ledger.create(tmp_path / "grouped", wl.genesis()) as led:
        env = led.store.shards[0]
        txns = [e.env.info()["last_txnid"] for e in led.store.shards]
        entered, gate, original = threading.Event(), threading.Event(), env.write

        @contextmanager
        def held() -> Iterator[Any]:
            entered.set()
            gate.wait()  # the first write waits: the rest queue up behind it
            env.write = original  # type: ignore[method-assign]
            with original() as txn:
                yield txn

        env.write = held  # type: ignore[method-assign]
        writers = Writers(led.store.shards, 2)
        try:
            assert work[0].shard == 0
            done = [writers.submit(0, [work[0]])]
            entered.wait()
            done += [writers.submit(x.shard, [x]) for x in work[1:]]
            gate.set()
            for f in done:
                f.result()
        finally:
            writers.close()
        assert contents(led) == expected
        used = [e.env.info()["last_txnid"] - t for e, t in zip(led.store.shards, txns, strict=True)]
        assert used[0] == 2 and used[2] == 1  # thread 0's queue: one transaction per shard
        assert used[1] <= sum(1 for x in work if x.shard == 1)
