"""The per-shard store: a shard's environment holds, per block, its section's canonical bytes
(``bodies``), its index record (``rows``) and its private and DNN transactions whole
(``hosted``), plus its own head (``shard_info``). The writer sits beside its rollback: a block is
written to its shards first and committed by the metadata environment
(:func:`lazyledger.store.commit_blocks`), so :func:`rollback` drops whatever a crash or a refused
append left above the committed head."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import lmdb

from lazyledger.codec import encode_section
from lazyledger.model import Transaction
from lazyledger.shards.layout import pack_position
from lazyledger.tables import BODIES, HOSTED, ROWS, SHARD_HEAD, SHARD_INFO

if TYPE_CHECKING:
    from lazyledger.store import Env


@attrs.frozen
class Section:
    """A shard section on its way to the store: its transactions, its index record (before
    zstd: :mod:`lazyledger.materialize.records`) and which of its transactions are also stored
    whole in ``hosted``."""

    height: int
    shard: int
    txs: Sequence[Transaction]
    record: bytes
    hosted: tuple[int, ...]


def default_dirs(path: Path, n: int) -> list[Path]:
    """Where a ledger at ``path`` keeps its ``n`` shard environments unless told otherwise."""
    return [path / f"shard-{s:04d}" for s in range(n)]


def write_sections(env: Env, sections: Sequence[Section]) -> None:
    """Store one shard's sections (body, index record, hosted transactions) in one
    transaction, appended in key order (full pages, no page rewritten). Its rollback is
    :func:`drop_section` (run by :func:`rollback`)."""
    hosted = [(pack_position(x.height, x.shard, i), x.txs[i]) for x in sections for i in x.hosted]
    with env.write() as txn:
        env.put_many(txn, BODIES, [(x.height, encode_section(x.txs)) for x in sections], True)
        env.put_many(txn, ROWS, [(x.height, x.record) for x in sections], True)
        if hosted:
            env.put_many(txn, HOSTED, hosted, append=True)
        env.put_field(txn, SHARD_INFO, SHARD_HEAD, sections[-1].height)


def drop_section(txn: lmdb.Transaction, env: Env, height: int) -> None:
    """Undo :func:`write_sections` for the section of block ``height`` (inside a write
    transaction of the shard's environment)."""
    env.delete(txn, BODIES, height)
    env.delete(txn, ROWS, height)
    cur = txn.cursor(env._db(HOSTED))
    if cur.set_range(HOSTED.key.encode(height << 32)):
        while bytes(cur.key()) < HOSTED.key.encode((height + 1) << 32) and cur.delete():
            pass


def rollback(env: Env, head: int) -> None:
    """Drop a shard's sections of blocks above the committed ``head`` (a torn or refused
    append), restoring its own head to its last section at or below it."""
    with env.write() as txn:
        written = env.get_field(txn, SHARD_INFO, SHARD_HEAD) or 0
        if written <= head:
            return
        for height in range(written, head, -1):
            drop_section(txn, env, height)
        cur = txn.cursor(env._db(BODIES))
        if cur.last():
            env.put_field(txn, SHARD_INFO, SHARD_HEAD, BODIES.key.decode(bytes(cur.key())))
        else:
            env.delete(txn, SHARD_INFO, SHARD_HEAD.name)
