"""The table registry: codecs round-trip and refuse malformed bytes with StorageError, every
environment opens exactly its declared tables, and the bytes on disk are those of schema 6 as
written before the registry (a store written by that code opens, answers the same, and the same
blocks appended now give the same bytes, table by table)."""

from __future__ import annotations

import json
import struct
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

import lazyledger as ll
from lazyledger import tables
from lazyledger.codec import encode_section
from lazyledger.ops import JobInfo
from lazyledger.store import Env
from lazyledger.tables import TABLES, Codec

DATA = Path(__file__).resolve().parent / "data"
ANSWERS = json.loads((DATA / "schema6-store.json").read_text())

u64s = st.integers(0, 2**64 - 1)
u32s = st.integers(0, 2**32 - 1)


def _round_trip(codec: Codec[Any], value: Any) -> None:
    assert codec.decode(codec.encode(value)) == value


@given(u64s)
def test_u64_round_trips_and_sorts_numerically(n: int) -> None:
    codec = tables.U64("height")
    _round_trip(codec, n)
    assert codec.encode(n) == struct.pack(">Q", n)
    if n:
        assert codec.encode(n - 1) < codec.encode(n)


@given(u64s, u32s, u64s, st.binary(min_size=32, max_size=32), st.booleans(), st.booleans())
def test_job_entries_round_trip_in_the_schema6_layout(
    position: int, asset: int, bounty: int, owner: bytes, hidden: bool, revealed: bool
) -> None:
    info = JobInfo(position, asset, bounty, owner, hidden, revealed)
    raw = tables.JOBS.value.encode(info)
    assert raw == struct.pack(">QIQ32s??", position, asset, bounty, owner, hidden, revealed)
    assert tables.JOBS.value.decode(raw) == info


@given(st.integers(0, 255), u32s, u32s, u64s, u32s)
def test_verdicts_and_checkpoint_keys_round_trip(
    status: int, correct: int, total: int, position: int, first: int
) -> None:
    _round_trip(tables.VERDICTS.value, (status, correct, total))
    _round_trip(tables.CHECKPOINTS.key, (position, first))
    assert tables.CHECKPOINTS.key.encode((position, first)) == struct.pack(">QI", position, first)


@given(st.lists(st.lists(st.tuples(u32s, st.integers(1, 2**63 - 1)), max_size=4), max_size=6))
def test_checkpoint_batches_round_trip(holdings: list[list[tuple[int, int]]]) -> None:
    codec = tables.CHECKPOINTS.value
    ids = np.arange(len(holdings), dtype=np.int64)
    counts = np.array([len(h) for h in holdings], np.int64)
    assets = np.array([a for h in holdings for a, _ in h], np.int64)
    values = np.array([v for h in holdings for _, v in h], np.int64)
    raw = codec.encode((ids, counts, assets, values))
    for got, want in zip(codec.decode(raw), (ids, counts, assets, values), strict=True):
        assert got.tolist() == want.tolist()
    for cut in range(len(raw)):  # every truncation is refused, never misread
        with pytest.raises(ll.StorageError):
            codec.decode(raw[:cut])


@pytest.mark.parametrize(
    ("codec", "raw"),
    [
        (tables.U64("height"), b"\x00" * 7),
        (tables.U64("height"), b"\x00" * 9),
        (tables.JOBS.key, b"\x01" * 31),
        (tables.JOBS.value, b"\x00" * 53),
        (tables.VERDICTS.value, b"\x00" * 8),
        (tables.CHECKPOINTS.key, b"\x00" * 11),
        (tables.Name(), b"\xff"),
        (tables.SHARD_DIRS.codec, b"not json"),
        (tables.SHARD_DIRS.codec, b'{"a": 1}'),
        (tables.SHARD_DIRS.codec, b"[1, 2]"),
        (tables.GENESIS.codec, b"not a zstd frame"),
    ],
)
def test_malformed_bytes_are_a_storage_error(codec: Codec[Any], raw: bytes) -> None:
    with pytest.raises(ll.StorageError):
        codec.decode(raw)


def test_a_fixed_key_of_the_wrong_length_is_refused_before_lmdb() -> None:
    with pytest.raises(ll.StorageError):
        tables.BLOBS.key.encode(b"\x00" * 31)


def test_each_environment_opens_exactly_its_declared_tables(ledger: ll.Ledger) -> None:
    envs = [ledger.store.meta, *ledger.store.shards, ledger.store.cache, ledger.store.blobs]
    assert {e.kind for e in envs} == set(tables.ENVS)
    for env in envs:
        declared = [t.name for t in tables.tables_of(env.kind)]
        assert sorted(env.db) == sorted(declared)
        assert tables.max_dbs(env.kind) == len(declared) >= 1
    assert sum(len(tables.tables_of(k)) for k in tables.ENVS) == len(TABLES)


def test_an_environment_refuses_a_table_declared_elsewhere(ledger: ll.Ledger) -> None:
    meta = ledger.store.meta
    with meta.read() as txn, pytest.raises(ll.StorageError, match="lives in shard"):
        meta.get(txn, tables.BODIES, 1)


def _fixture(tmp_path: Path) -> Path:
    with tarfile.open(DATA / "schema6-store.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "chain"


def _state(st_: ll.AccountState) -> dict[str, Any]:
    return {"nonce": st_.nonce, "balances": {str(k): v for k, v in sorted(st_.balances.items())}}


@pytest.mark.parametrize("readonly", [False, True])
def test_a_store_written_before_the_registry_answers_the_same(
    tmp_path: Path, readonly: bool
) -> None:
    path = _fixture(tmp_path)
    with ll.Ledger.open(path, readonly=readonly) as led:
        assert led.height == ANSWERS["height"]
        assert led.head_id.hex() == ANSWERS["head_id"]
        assert led.checkpoint_count() == ANSWERS["checkpoints"]
        assert led.get_blob(bytes.fromhex(ANSWERS["blob"])) == b"a blob kept across versions"
        accounts = [bytes.fromhex(a) for a in ANSWERS["states"]]
        keys = [k for k in _workload_keys() if k.account in set(accounts)]
        keyring = ll.Keyring(keys)
        for a in accounts:
            assert _state(led.state(a, keyring=keyring)) == ANSWERS["states"][a.hex()]
            assert _state(led.state(a, 3, keyring=keyring)) == ANSWERS["states_at_3"][a.hex()]
        for h in range(1, led.height + 1):  # headers and sections decode and link
            block = led.block(h)
            for _, tx in block.transactions():
                assert led.transaction(tx.id) == tx


def _workload_keys() -> list[ll.Keypair]:
    from lazyledger.workloads import Workload

    return Workload("uniform", n_accounts=12, n_shards=3, seed=6).keys


def _table_items(env: Env) -> dict[str, list[tuple[bytes, bytes]]]:
    with env.read() as txn:
        return {
            name: [(bytes(k), bytes(v)) for k, v in txn.cursor(db)] for name, db in env.db.items()
        }


def test_appending_the_same_blocks_now_writes_the_same_bytes(tmp_path: Path) -> None:
    old = _fixture(tmp_path / "old")
    with ll.Ledger.open(old, readonly=True) as before:
        blocks = list(before.blocks())
        with ll.Ledger.create(tmp_path / "new", before.genesis, map_size=1 << 24) as now:
            now.append_many(blocks[:2])
            for b in blocks[2:]:
                now.append(b)
            now.put_blob(b"a blob kept across versions")
            pairs = [
                (before.store.meta, now.store.meta),
                (before.store.blobs, now.store.blobs),
                *zip(before.store.shards, now.store.shards, strict=True),
            ]
            for was, new in pairs:
                assert _table_items(was) == _table_items(new), was.kind
            with now.store.shards[0].read() as txn:  # the layout, stated independently
                raw = txn.get(struct.pack(">Q", 1), db=now.store.shards[0].db["bodies"])
            section = encode_section(blocks[0].sections[0])
            assert zstandard.ZstdDecompressor().decompress(raw) == section
            assert raw == zstandard.ZstdCompressor(level=3).compress(section)
