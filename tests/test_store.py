"""Storage: crash safety (SIGKILL at random moments), torn-append recovery, schema checks."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.store import read_u64, u64
from lazyledger.workloads import Workload

CHILD = r"""
import sys, lazyledger as ll
from lazyledger.workloads import Workload
path, run = sys.argv[1], int(sys.argv[2])
wl = Workload("uniform", n_accounts=50, n_shards=3, seed=run)
base = Workload("uniform", n_accounts=50, n_shards=3, seed=0)
try:
    led = ll.Ledger.open(path)
except ll.StorageError:
    led = ll.Ledger.create(path, base.genesis())
wl.keys, wl.issuer, wl.pool = base.keys, base.issuer, base.pool
for k in wl.keys:
    wl.nonces[k.account] = led.nonce(k.account)
print("ready", flush=True)
while True:
    led.append(led.propose(wl.transactions(150), wl.issuer))
"""


def check_whole(path: Path) -> int:
    """Reopen and check that the store holds only whole, valid, linked blocks."""
    with ll.Ledger.open(path) as led:
        parent = led.genesis_id
        blocks = []
        for h in range(1, led.height + 1):
            block = led.block(h)
            led.validator.check_header(block.header, parent, h)
            assert [len(s) for s in block.sections] == list(block.header.shard_counts)
            parent = block.id
            blocks.append(block)
        for s, env in enumerate(led.store.shards):
            with env.read() as txn:
                assert read_u64(txn.get(b"head", db=env.db["info"]) or u64(0)) <= led.height
                for table in ("bodies", "rows"):
                    for key, _ in txn.cursor(env.db[table]):
                        assert read_u64(key) <= led.height, (s, table)
                for key, _ in txn.cursor(env.db["hosted"]):
                    assert read_u64(key) >> 32 <= led.height
        ref, _ = replay_chain(led.genesis, blocks)
        assert led.replay_all() == ref
        return led.height


def test_sigkill_at_random_moments_never_tears_a_block(tmp_path: Path) -> None:
    path = tmp_path / "chain"
    rng = random.Random(1)
    heights = []
    for run in range(1, 7):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(run)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.8))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        heights.append(check_whole(path))
    assert heights == sorted(heights) and heights[-1] > 0


SMALL_CHILD = r"""
import sys, lazyledger as ll
path, run = sys.argv[1], int(sys.argv[3])
blocks = open(sys.argv[2], "rb").read().split(b"--block--")
led = ll.Ledger.open(path)
print("ready", flush=True)
h = led.height
while h < len(blocks):  # one block per append, or a few per append_many (one group commit)
    n = 1 if (h + run) % 3 == 0 else 1 + h % 7
    if n == 1:
        led.append(blocks[h])
    else:
        led.append_many(blocks[h : h + n])
    h = led.height
    print(h, flush=True)  # durable: the parent may kill us from here on
print("done", flush=True)
sys.stdin.read()
"""


def _killed_at_random(tmp_path: Path, child: str, seed: int, arg: Callable[[int], str]) -> None:
    """500 blocks of 15 txs appended by ``child`` (a script run with the ledger's path, the
    saved blocks and ``arg(run)``) killed 8 times at random moments: every block it reported
    durable survives, and none is torn."""
    wl = Workload("uniform", n_accounts=60, n_shards=4, seed=seed)
    genesis = wl.genesis()
    with ll.Ledger.create(tmp_path / "source", genesis) as src:
        blocks = list(wl.blocks(src, 500, 15))
    saved = tmp_path / "blocks.bin"
    saved.write_bytes(b"--block--".join(b.to_bytes() for b in blocks))
    path = tmp_path / "chain"
    ll.Ledger.create(path, genesis).close()
    rng = random.Random(seed)
    reported = 0
    for run in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", child, str(path), str(saved), arg(run)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        early: list[str] = []
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            if run % 2:  # kill mid-stream, after some blocks are in (on a busy machine too)
                early.append(proc.stdout.readline().strip())
            time.sleep(rng.uniform(0.02, 0.5))
        finally:
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
        lines = [x for x in [*early, *out.split()] if x.isdigit()]
        if lines:
            reported = max(reported, int(lines[-1]))
        h = check_whole(path)
        assert h >= reported  # nothing reported appended was lost
        with ll.Ledger.open(path) as led:
            assert led.head_id == (blocks[h - 1].id if h else genesis.id)
    assert reported > 0


def test_sigkill_while_ingesting_small_blocks_loses_none_and_tears_none(tmp_path: Path) -> None:
    """Through append and append_many (see :func:`_killed_at_random`)."""
    _killed_at_random(tmp_path, SMALL_CHILD, 21, str)


STREAM_CHILD = r"""
import sys, lazyledger as ll
path, depth = sys.argv[1], int(sys.argv[3])
blocks = open(sys.argv[2], "rb").read().split(b"--block--")
led = ll.Ledger.open(path)
print("ready", flush=True)
for header in led.append_stream(blocks[led.height :], depth):
    print(header.height, flush=True)  # durable: the parent may kill us from here on
print("done", flush=True)
sys.stdin.read()
"""


def test_sigkill_while_streaming_small_blocks_loses_none_and_tears_none(tmp_path: Path) -> None:
    """Through append_stream, pipelines 1, 2 and 8 (the default) deep (see
    :func:`_killed_at_random`)."""
    _killed_at_random(tmp_path, STREAM_CHILD, 22, lambda run: str((1, 2, 8)[run % 3]))


@contextmanager
def failing_meta_commit(led: ll.Ledger) -> Any:
    """Make the commit-point write fail, as a crash between shard and meta writes would."""
    original = led.store.meta.write

    @contextmanager
    def boom() -> Any:
        raise RuntimeError("simulated crash before the commit point")
        yield

    led.store.meta.write = boom  # type: ignore[method-assign]
    try:
        yield
    finally:
        led.store.meta.write = original  # type: ignore[method-assign]


def test_torn_append_is_rolled_back_on_open(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=30, n_shards=4, seed=3)
    path = tmp_path / "chain"
    led = ll.Ledger.create(path, wl.genesis())
    list(wl.blocks(led, 2, 50))
    before = led.replay_all()
    block = led.propose(wl.transactions(80), wl.issuer)
    with failing_meta_commit(led), pytest.raises(RuntimeError):
        led.append(block)
    assert led.height == 2 and led.replay_all() == before  # rolled back in process too
    led.close()
    with ll.Ledger.open(path) as again:
        assert again.height == 2 and again.replay_all() == before
        for env in again.store.shards:
            with env.read() as txn:
                assert txn.get(u64(3), db=env.db["rows"]) is None
                assert txn.get(u64(3), db=env.db["bodies"]) is None
        again.append(block)  # the same block is valid again: nonce counts were rolled back too
        assert again.height == 3
    assert check_whole(path) == 3


def test_schema_version_is_checked(tmp_path: Path, genesis: ll.Genesis) -> None:
    path = tmp_path / "chain"
    with ll.Ledger.create(path, genesis) as led, led.store.meta.write() as txn:
        txn.put(b"schema", u64(99), db=led.store.meta.db["info"])
    with pytest.raises(ll.SchemaMismatch, match="99"):
        ll.Ledger.open(path)


def test_open_errors(tmp_path: Path, genesis: ll.Genesis) -> None:
    with pytest.raises(ll.StorageError, match="no ledger"):
        ll.Ledger.open(tmp_path / "missing")
    with ll.Ledger.create(tmp_path / "a", genesis):
        with pytest.raises(ll.StorageError, match="already open"):
            ll.Ledger.open(tmp_path / "a")
        with pytest.raises(ll.StorageError, match="already exists"):
            ll.Ledger.create(tmp_path / "a", genesis)


def test_shards_on_separate_directories(
    tmp_path: Path, genesis: ll.Genesis, keys: list[ll.Keypair]
) -> None:
    dirs = [tmp_path / f"disk{s}" / "shard" for s in range(genesis.n_shards)]
    a = keys[0]
    with ll.Ledger.create(tmp_path / "meta", genesis, shard_dirs=dirs) as led:
        led.append(led.propose([ll.transfer(a, nonce=0, to=keys[1].account, asset=0, amount=3)], a))
    assert all((d / "data.mdb").exists() for d in dirs)
    with ll.Ledger.open(tmp_path / "meta") as led:
        assert led.state(keys[1].account).balances == {0: 3, 1: 500}


def test_map_full_is_actionable(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=20, n_shards=1, seed=1)
    with ll.Ledger.create(tmp_path / "small", wl.genesis(), map_size=1 << 17) as led:
        with pytest.raises(ll.StorageError, match="larger map_size"):
            list(wl.blocks(led, 50, 200))
        h = led.height
    if os.name == "posix":
        assert check_whole(tmp_path / "small") == h


def test_group_commit_is_all_or_nothing(tmp_path: Path) -> None:
    wl = Workload("adversarial", n_accounts=20, n_shards=3, seed=9)
    source = ll.Ledger.create(tmp_path / "src", wl.genesis())
    blocks = list(wl.blocks(source, 6, 40))
    source.close()
    with ll.Ledger.create(tmp_path / "dst", wl.genesis()) as led:
        led.append_many(blocks[:4])  # nonces and parents chain across the batch
        assert led.height == 4 and led.head_id == blocks[3].id
        bad = [blocks[4], blocks[4]]  # the second repeats a height: the whole batch is refused
        with pytest.raises(ll.InvalidBlock):
            led.append_many(bad)
        assert led.height == 4
        led.append_many(blocks[4:])
        ref, _ = replay_chain(led.genesis, blocks)
        assert led.replay_all() == ref
    assert check_whole(tmp_path / "dst") == 6


def test_damaged_cache_entries_are_ignored(tmp_path: Path) -> None:
    """The cache skips fsync; a checkpoint damaged by a system crash must never be used."""
    wl = Workload("clusters", n_accounts=30, n_shards=2, seed=4, cluster_size=5)
    path = tmp_path / "chain"
    with ll.Ledger.create(path, wl.genesis()) as led:
        blocks = list(wl.blocks(led, 5, 40))
        led.checkpoint_min_rows = 1
        a = wl.keys[0].account
        truth = led.state(a)
        cache = led.store.cache
        with cache.read() as txn:
            entries = list(txn.cursor(cache.db["checkpoints"]))
        assert entries
        with cache.write() as txn:
            for key, value in entries:  # flip a balance byte, keep the checksum
                bad = bytearray(value)
                bad[-20] ^= 0xFF
                txn.put(bytes(key), bytes(bad), db=cache.db["checkpoints"])
    with ll.Ledger.open(path) as led:  # as after a system crash: checkpoints are read on open
        assert led.slice(a) == led.slice(a, use_checkpoints=False)  # the damaged cut is skipped
        assert led.state(a) == truth
    for f in (path / "cache").iterdir():  # an unreadable cache environment is rebuilt empty
        f.write_bytes(b"\0garbage" * 64)
    with ll.Ledger.open(path) as led:
        ref, _ = replay_chain(led.genesis, blocks)
        assert led.state(a) == ref[a] == truth


def test_a_second_process_cannot_open_a_ledger_in_use(tmp_path: Path, genesis: ll.Genesis) -> None:
    path = tmp_path / "chain"
    ll.Ledger.create(path, genesis).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import lazyledger as ll, sys; l = ll.Ledger.open({str(path)!r}); "
            "print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(ll.StorageError, match="another process"):
            ll.Ledger.open(path)
    finally:
        holder.communicate("")
    with ll.Ledger.open(path) as led:  # released when the holder exits
        assert led.height == 0


def test_storage_stats_report_map_use_tables_and_free_pages(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=40, n_shards=2, seed=6)
    with ll.Ledger.create(tmp_path / "chain", wl.genesis(), map_size=1 << 26) as led:
        blocks = list(wl.blocks(led, 6, 60))
        led.checkpoint_min_rows = 1
        for k in wl.keys[:30]:
            led.state(k.account)  # checkpoints: cache pages
        stats = led.storage_stats()
        assert sorted(e.kind for e in stats.envs) == ["blobs", "cache", "meta", "shard", "shard"]
        for e in stats.envs:
            assert e.map_size == 1 << 26 and e.page_size > 0
            held = 2 + sum(t.pages for t in e.tables)  # (+ the main database's pages)
            assert e.used_bytes == e.last_page * e.page_size >= held * e.page_size
            assert 0 <= e.free_pages < e.last_page - held + 1
        shards = [e for e in stats.envs if e.kind == "shard"]
        sections = sum(1 for b in blocks for s in b.sections if s)
        assert sum(t.entries for e in shards for t in e.tables if t.name == "bodies") == sections
        assert sum(t.entries for e in shards for t in e.tables if t.name == "rows") == sections
        assert stats.table_bytes()["bodies"] > 0
        assert stats.used_bytes == sum(u for u, _ in led.store.map_use().values())
        doc = stats.to_json()
        cache = next(e for e in stats.envs if e.kind == "cache")
        assert doc[cache.path]["tables"]["checkpoints"]["entries"] == led.checkpoint_count()
        free_before = cache.free_pages
        assert led.drop_checkpoints() > 0  # the dropped tree's pages go to LMDB's freelist
        after = next(e for e in led.storage_stats().envs if e.kind == "cache")
        assert after.free_pages > free_before
        assert next(t for t in after.tables if t.name == "checkpoints").pages == 0
