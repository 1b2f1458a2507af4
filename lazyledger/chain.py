"""Readers of the stored chain, below both halves of the ledger (ingestion and
materialisation): headers, shard sections, transactions by position, the job index, blobs and
the verdict memo, each through its table's codecs (:mod:`lazyledger.tables`)."""

from __future__ import annotations

from collections.abc import Sequence

import blake3

from lazyledger.codec import decode_section, section_item
from lazyledger.errors import BlobMissing
from lazyledger.model import Header, Transaction
from lazyledger.ops import DnnJob, JobInfo
from lazyledger.shards import reader, unpack_position
from lazyledger.store import Store
from lazyledger.tables import (
    BLOBS,
    HEAD,
    HEADERS,
    JOBS,
    META_INFO,
    VERDICTS,
    Verdict,
)


class Chain:
    """Typed reads of one store's chain data (and the few writes that are not part of an
    append: blobs, verdicts). Range checks against the head are the caller's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def header(self, height: int) -> Header:
        """The stored header of block ``height`` (StorageError if it is missing)."""
        meta = self.store.meta
        with meta.read() as txn:
            return meta.need(txn, HEADERS, height, f"header {height}")

    def section_bytes(self, height: int, shard: int) -> bytes | None:
        """The canonical bytes of one shard section (None: the section is empty)."""
        return reader.section_bytes(self.store, height, shard)

    def section(self, height: int, shard: int) -> list[Transaction]:
        raw = self.section_bytes(height, shard)
        return decode_section(raw, 0, shard)[0] if raw else []

    def is_at(self, tx_id: bytes, packed: int) -> bool:
        """Whether the transaction at ``packed`` has id ``tx_id``."""
        h, s, i = unpack_position(packed)
        return blake3.blake3(section_item(reader.body(self.store, h, s), i)).digest() == tx_id

    def hosted(self, pos: int) -> Transaction:
        """A private or DNN transaction by packed position (kept apart so replay never decodes
        blocks)."""
        return reader.hosted(self.store, pos)

    def job(self, job: bytes) -> JobInfo | None:
        """What the job index holds of job account ``job`` (None: no such job)."""
        meta = self.store.meta
        with meta.read() as txn:
            return meta.get(txn, JOBS, bytes(job)) if len(job) == 32 else None

    def job_position(self, job: bytes) -> int | None:
        found = self.job(job)
        return None if found is None else found.position

    def job_terms(self, job: bytes) -> DnnJob | None:
        """The dnn_job call of a job account in a stored block (None: no such job)."""
        found = self.job(job)
        call = None if found is None else self.hosted(found.position).call
        return call if isinstance(call, DnnJob) else None

    def blob(self, key: bytes) -> bytes:
        """A blob by hash; BlobMissing (naming the hash) if this node does not hold it."""
        found = self.held_blob(key)
        if found is None:
            raise BlobMissing(key)
        return found

    def held_blob(self, key: bytes) -> bytes | None:
        env = self.store.blobs
        with env.read() as txn:
            return env.get(txn, BLOBS, key)

    def has_blob(self, key: bytes) -> bool:
        env = self.store.blobs
        with env.read() as txn:
            return env.has(txn, BLOBS, key)

    def put_blob(self, key: bytes, data: bytes) -> None:
        """Store a blob under its hash (kept if already there)."""
        env = self.store.blobs
        with env.write() as txn:
            env.put(txn, BLOBS, key, data, overwrite=False)

    def verdict(self, job: bytes, weights: bytes) -> Verdict | None:
        """A memoised claim verdict (None: not checked here, or a damaged entry)."""
        return self.store.cache_get(VERDICTS, job + weights)

    def put_verdict(self, job: bytes, weights: bytes, verdict: Verdict) -> None:
        self.store.cache_put(VERDICTS, job + weights, verdict)


def commit_blocks(
    store: Store, headers: Sequence[Header], jobs: dict[bytes, JobInfo], head: int
) -> None:
    """The commit point of an append: the headers, the job-index entries the blocks create or
    update, and the new head, in one metadata transaction (the shard sections were written
    before, and :meth:`Store.recover` rolls them back if this never commits)."""
    meta = store.meta
    with meta.write() as txn:
        meta.put_many(txn, HEADERS, [(h.height, h) for h in headers], append=True)
        if jobs:
            meta.put_many(txn, JOBS, sorted(jobs.items()))
        meta.put_field(txn, META_INFO, HEAD, head)
