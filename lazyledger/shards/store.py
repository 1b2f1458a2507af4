"""The per-shard store: a shard's environment holds, per block, its section's canonical bytes
(``bodies``), its index record (``rows``) and its private and DNN transactions whole
(``hosted``), plus its own head (``shard_info``). The writer sits beside its rollback: a block is
written to its shards first and committed by the metadata environment
(:func:`lazyledger.store.commit_blocks`), so :func:`rollback` drops whatever a crash or a refused
append left above the committed head."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
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


class Writers:
    """Background writers of shard sections: ``threads`` threads, shard ``s`` written by
    thread ``s % threads``, so each shard's sections land in the order they were submitted.
    A thread writes everything queued for one shard in one transaction (a group commit on the
    shard side only: each block is still made part of the chain by its own metadata commit,
    and a section written ahead of it is rolled back by :func:`rollback` if that never
    happens). Their commits wait on the disk, not the GIL."""

    def __init__(self, envs: Sequence[Env], threads: int) -> None:
        self.envs = envs
        self._queues: list[queue.SimpleQueue[_Job | None]] = [
            queue.SimpleQueue() for _ in range(max(1, threads))
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"lazyledger-io{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()

    def submit(self, shard: int, sections: Sequence[Section]) -> Future[None]:
        """Queue sections of ``shard`` (following any queued before); the future is done once
        they are committed (or failed)."""
        done: Future[None] = Future()
        self._queues[shard % len(self._queues)].put((shard, sections, done))
        return done

    def close(self) -> None:
        """Write what is queued, then stop the threads."""
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join()

    def _run(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            batch, stop = [job], False
            while not stop:  # everything queued behind it joins its transaction
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            by_shard: dict[int, list[_Job]] = {}
            for queued in batch:
                by_shard.setdefault(queued[0], []).append(queued)
            for shard, queued_jobs in by_shard.items():
                try:
                    write_sections(
                        self.envs[shard], [x for _, secs, _ in queued_jobs for x in secs]
                    )
                except BaseException as e:
                    for _, _, f in queued_jobs:
                        f.set_exception(e)
                else:
                    for _, _, f in queued_jobs:
                        f.set_result(None)
            if stop:
                return


_Job = tuple[int, Sequence[Section], Future[None]]
"""A shard, sections of it to write, and the future their commit resolves."""


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
