"""Ingestion: blocks in, never executed. Propose the next block; admit a transaction; append
blocks: decode, validate statelessly (nonces from the index of counts, jobs from the job index),
stage each shard section (rows, index record, hosted transactions), write the shard sections
beside their rollback (:func:`lazyledger.shards.store.write_sections`, undone by ``Store.recover``),
commit the headers and job index (the commit point), then extend the touch map and the
materialiser's index."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import attrs

from lazyledger.chain import Chain, commit_blocks
from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidBlock, InvalidRequest, InvalidTransaction
from lazyledger.materialize import records
from lazyledger.materialize.blobs import BlobRule
from lazyledger.materialize.engine import Head, Materializer
from lazyledger.materialize.rows import row_of
from lazyledger.model import Block, Genesis, Header, Transaction
from lazyledger.ops import REGISTRY, DnnJob, DnnReveal, JobInfo, job_account
from lazyledger.shards import end_of, pack_position, shard_of
from lazyledger.shards.merkle import root
from lazyledger.shards.store import Section, Writers
from lazyledger.store import Store
from lazyledger.touches import TouchMap
from lazyledger.validate import TouchRoot, Validator

TouchProofs = dict[bytes, dict[str, Any]]

STREAM_DEPTH = 8
"""Blocks :meth:`Ingestor.append_stream` keeps in flight by default (medians of 3 alternated
runs, ~15-tx blocks on 2 cores: 6.5k tx/s at 8, 6.2k at 4, 5.9k at 2)."""

HOSTED_OPS = REGISTRY.stored_whole
"""Transactions also stored whole by position: replay needs more than their row."""


class Ingestor:
    """The write side of a ledger handle: see the module docstring. It shares the head (and
    its lock) with the materialiser, whose index it extends after each commit."""

    def __init__(
        self,
        store: Store,
        chain: Chain,
        genesis: Genesis,
        head: Head,
        validator: Validator,
        blob_rule: BlobRule,
        materializer: Materializer,
        touch_map: Callable[[], TouchMap],
        drop_touches: Callable[[], None],
    ) -> None:
        self.store, self.chain, self.genesis, self.head = store, chain, genesis, head
        self.n_shards = genesis.n_shards
        self.validator, self.blob_rule, self.materializer = validator, blob_rule, materializer
        self.nonces: dict[bytes, int] = {}
        """Nonces known at the head (a cache: cleared when a reader follows the owner)."""
        self.touch_map = touch_map
        """The touch commitment at the head, kept by the owner (see :meth:`follow`): call it
        holding the head's lock."""
        self.drop_touches = drop_touches
        """Forget the touch map (rebuilt from the index at its next use)."""
        self._writers: Writers | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._toucher: ThreadPoolExecutor | None = None
        self._streaming: int | None = None
        """The thread whose :meth:`append_stream` is open (it holds the head's lock)."""

    def close(self) -> None:
        if self._writers is not None:
            self._writers.close()
        if self._committer is not None:
            self._committer.shutdown()
        if self._toucher is not None:
            self._toucher.shutdown()

    def head_time(self) -> int:
        """The head block's time (0 at genesis)."""
        h = self.head.height
        return 0 if h == 0 else self.chain.header(h).time_ms

    def sections(self, height: int) -> tuple[tuple[Transaction, ...], ...]:
        """The shard sections of stored block ``height``."""
        return tuple(tuple(self.chain.section(height, s)) for s in range(self.n_shards))

    # -- admission ----------------------------------------------------------------------------

    def nonce(self, account: bytes) -> int:
        """Transactions ``account`` has sent so far: the nonce its next transaction must carry."""
        self._not_streaming("read a nonce")
        cached = self.nonces.get(account)
        if cached is not None:
            return cached
        self.materializer.ensure_index()  # (outside the lock, which building takes)
        with self.head.lock:  # no append may land between the read and the cache write
            n = self.materializer.sent(account, self.head.height)
            if len(self.nonces) > 1 << 20:
                self.nonces.clear()
            self.nonces[account] = n
        return n

    def check_transaction(self, tx: Transaction) -> None:
        """Stateless admission check (mempool): form, signature, and a nonce not yet used."""
        self.validator.check_transaction(tx, jobs=self.chain.job)
        expected = self.nonce(tx.sender)
        if tx.nonce < expected:
            raise InvalidTransaction(f"nonce {tx.nonce} already used (next is {expected})")
        self.blob_rule.check(tx, self.chain.job_terms)  # BlobUnavailable: publish the blob first

    # -- blocks -------------------------------------------------------------------------------

    def propose(self, txs: Iterable[Transaction], proposer: Keypair) -> Block:
        """The next block holding ``txs`` (grouped by shard, given order kept), signed by
        ``proposer``. It is not appended."""
        self._not_streaming("propose a block")
        sections: list[list[Transaction]] = [[] for _ in range(self.n_shards)]
        for tx in txs:
            sections[shard_of(tx.sender, self.n_shards)].append(tx)
        header = Header(
            self.genesis.chain_id,
            self.head.height + 1,
            self.head.id,
            tuple(root([t.id for t in sec]) for sec in sections),
            tuple(len(sec) for sec in sections),
            proposer.public_key,
            time_ms=max(time.time_ns() // 1_000_000, self.head_time()),
        )
        with self.head.lock:
            touch_root = self.touch_map().stage().add_block(header.height, sections)
        header = attrs.evolve(header, touch_root=touch_root)
        header = attrs.evolve(header, signature=proposer.sign(header.body))
        return Block(header, tuple(tuple(s) for s in sections))

    def append_many(self, blocks: Iterable[Block | bytes]) -> list[Header]:
        """Validate consecutive blocks and store them with one commit per environment (a group
        commit). All or nothing: if any block is invalid, none is stored."""
        decoded = [_as_block(b) for b in blocks]
        self._not_streaming("append blocks")
        mat = self.materializer
        mat.ensure_index()  # (outside the lock, which building takes)
        with self.head.lock:
            touches = self.touch_map().stage()
            # Small blocks' signatures are checked on this thread while their shard writes wait
            # on the disk (other threads would only compete with this one for the 2 cores).
            pool = sum(len(s) for b in decoded for s in b.sections) >= _POOL_FROM
            batch = self._prepare(decoded, touches.add_block, _InFlight(), pool)
            if batch is None:
                return []
            try:
                # Shard sections are stored while the signature checks still run; only the
                # metadata commit (after every signature passed) makes the blocks part of the
                # chain, and a refusal rolls the shard writes back.
                self._write(batch)
            except BaseException:
                self.store.recover()  # drop the shard writes: the commit point was not reached
                raise
            touches.commit()
            self._settle(batch)
        # the blocks are durable: checkpoint work starts only now
        mat.after_append(batch.heights())
        return batch.headers()

    def append_stream(
        self, blocks: Iterable[Block | bytes], depth: int = STREAM_DEPTH
    ) -> Generator[Header, None, None]:
        """Append consecutive blocks one by one, each with its own durable commit, in order,
        as :meth:`append_many` of one block would, in a pipeline: while up to ``depth`` blocks
        are being stored (shard sections on the shard writers, then the metadata commit on the
        committer thread, their signature checks on the validator's pool), the next one is
        decoded, validated and staged on this thread. A block's header is yielded once it is
        durable. The head's lock is held until the stream ends (or the generator is closed).

        The first refused block stops the stream with the error :meth:`append` would raise
        for it: the blocks before it stay stored (their headers are yielded before the error is
        raised), and nothing of it or of the blocks after it is stored (up to ``depth`` of those
        may have been read and validated: signature checks finish on the committer)."""
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise InvalidRequest(f"depth {depth!r} must be a positive integer")
        self._not_streaming("stream blocks")
        mat = self.materializer
        mat.ensure_index()  # (outside the lock, which building takes)
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="lazyledger-commit")
        committer = self._committer
        with self.head.lock:
            self._streaming = threading.get_ident()
            run = _InFlight()
            # Each block is committed to the touch map (on its thread) as it validates, so
            # that the next block validates against it; a refusal drops the whole map.
            touches = self._touches()
            try:
                for raw in blocks:
                    try:
                        block = _as_block(raw)
                        batch = self._prepare([block], touches.root, run)
                        assert batch is not None
                    except BaseException:
                        touches.drain()
                        self.drop_touches()  # (it holds the refused block)
                        while run.batches:  # the blocks before the refused one still land
                            yield self._land(run)
                        raise
                    shards = self._submit_shards(batch.staged)
                    run.push(batch, shards, committer.submit(self._commit, batch, shards, run))
                    while len(run.batches) > depth:
                        yield self._land(run)
                while run.batches:
                    yield self._land(run)
            finally:
                try:
                    while run.batches:  # closed early or failed: what is in flight still lands
                        self._land(run)
                finally:
                    touches.drain()  # (no touch work runs past the lock)
                    self._streaming = None

    def _land(self, run: _InFlight) -> Header:
        """Wait for the oldest block in flight to be durable and make it the head; returns its
        header. If that fails, see :meth:`_abort`."""
        batch = run.batches[0]
        try:
            run.commits[0].result()
        except BaseException:
            self._abort(run)
            raise
        run.pop()
        self._settle(batch)
        self.materializer.after_append(batch.heights())
        return batch.headers()[0]

    def _abort(self, run: _InFlight) -> None:
        """Stop a stream: nothing more is committed; once every write in flight is done, the
        blocks whose commits went through (none, if the oldest was refused; some, if the wait
        itself was interrupted) become the head, the shard writes above it are rolled back and
        the touch map (ahead of the head) is dropped."""
        run.broken = True  # (the committer checks it before each block)
        wait([*run.commits, *(f for fs in run.shards for f in fs)])  # (errors ignored)
        while run.batches and run.commits[0].exception() is None:
            batch = run.batches[0]
            run.pop()
            self._settle(batch)
            self.materializer.after_append(batch.heights())
        run.clear()
        self.store.recover()
        self.drop_touches()

    def _commit(self, batch: _Batch, shards: Sequence[Future[None]], run: _InFlight) -> None:
        """The committer thread's part of a streamed block: once its shard sections are
        written and its signatures pass, its metadata commit (the commit point). Nothing is
        committed after a failed block."""
        if run.broken:
            raise _Skipped("an earlier block of the stream was refused")
        try:
            self._commit_point(batch, shards)
        except BaseException:
            run.broken = True
            raise

    def _touches(self) -> _TouchThread:
        """The touch map at the head, advanced block by block on its own thread, each block
        committed to it as it is added (call it holding the head's lock, and drain what it
        returns before letting the lock go)."""
        if self._toucher is None:
            self._toucher = ThreadPoolExecutor(1, thread_name_prefix="lazyledger-touch")
        return _TouchThread(self.touch_map(), self._toucher)

    def _not_streaming(self, what: str) -> None:
        """Refuse a write from the thread that holds an open stream (it holds the head's
        lock: waiting for it would never end)."""
        if self._streaming == threading.get_ident():
            raise InvalidRequest(f"cannot {what} while this thread's append_stream is open")

    def _prepare(
        self,
        decoded: Sequence[Block],
        touch_root: TouchRoot,
        run: _InFlight,
        pool: bool = True,
    ) -> _Batch | None:
        """Validate consecutive blocks that follow the blocks in flight (or the head) and
        stage their sections; their signature checks keep running on the validator's pool
        (with ``pool``; else they run when their ``signatures`` are called). Writes nothing.
        Call it holding the head's lock. None for no blocks."""
        mat = self.materializer
        last = run.batches[-1] if run.batches else None
        if last is None:
            height, head, parent_time = self.head.height, self.head.id, self.head_time()
        else:
            height, head, parent_time = last.height, last.head, last.time_ms
        nonces: dict[bytes, int] = {}
        jobs: dict[bytes, JobInfo] = {}  # job-index entries these blocks create or update
        terms: dict[bytes, DnnJob] = {}  # the calls of jobs these blocks create

        def job_of(job: bytes) -> JobInfo | None:
            if job in jobs:
                return jobs[job]
            found = run.job(job)
            return found if found is not None else self.chain.job(job)

        def terms_of(job: bytes) -> DnnJob | None:
            if job in terms:
                return terms[job]
            found = run.terms(job)
            return found if found is not None else self.chain.job_terms(job)

        def blobs(tx: Transaction) -> None:
            self.blob_rule.check(tx, terms_of)

        known = self._known_ids(decoded)
        head_end = end_of(self.head.height)

        def nonce_of(a: bytes) -> int:
            if a in nonces:
                return nonces[a]
            found = run.nonce(a)
            if found is not None:
                return found
            cached = self.nonces.get(a)
            if cached is not None:
                return cached
            if a not in known:
                return mat.sent(a, self.head.height)
            aid = known[a]  # (an account first seen in flight sent nothing before it)
            return 0 if aid is None else mat.sent_indexed(aid, head_end)

        checked: list[tuple[Block, dict[bytes, int]]] = []
        signatures = []
        for block in decoded:
            height += 1
            counts, finish = self.validator.check_block_deferred(
                block, head, height, nonce_of, job_of, parent_time, blobs, touch_root, pool
            )
            parent_time = block.header.time_ms
            signatures.append(finish)
            nonces.update(counts)
            for pos, tx in block.transactions():  # index updates seen by later blocks
                c = tx.call
                if isinstance(c, DnnJob):
                    at = pack_position(*pos)
                    info = JobInfo(at, c.asset, c.bounty, tx.sender, c.hidden, False)
                    jobs[job_account(tx.id)] = info
                    terms[job_account(tx.id)] = c
                elif isinstance(c, DnnReveal):
                    revealed = job_of(c.job)
                    assert revealed is not None  # validated
                    jobs[c.job] = attrs.evolve(revealed, revealed=True)
            head = block.header.id
            checked.append((block, counts))
        if not checked:
            return None
        first_id = last.next_id if last is not None else mat.next_id
        staged, indexed, new_ids = self._stage(checked, job_of, first_id, run, known)
        return _Batch(
            checked, nonces, jobs, terms, signatures, staged, indexed, new_ids,
            height, head, parent_time, first_id + len(new_ids),
        )  # fmt: skip

    def _known_ids(self, blocks: Sequence[Block]) -> dict[bytes, int | None]:
        """The index's dense ids of every sender and access-set account of ``blocks`` (None:
        not in the index), looked up together."""
        accounts: list[bytes] = []
        for b in blocks:
            for sec in b.sections:
                for tx in sec:
                    accounts.append(tx.sender)
                    accounts += tx.access()
        if sum(map(len, accounts)) != 32 * len(accounts):  # (malformed: refused later)
            accounts = [a for a in accounts if len(a) == 32]
        return dict(zip(accounts, self.materializer.known_ids(accounts), strict=True))

    def _settle(self, batch: _Batch) -> None:
        """Make stored blocks the head in memory: the nonce cache, the materialiser's index
        and the head itself. Call it holding the head's lock."""
        mat = self.materializer
        self.nonces.update(batch.nonces)
        mat.appended(lambda: batch.indexed)
        self.head.height, self.head.id = batch.height, batch.head

    def _stage(
        self,
        checked: Sequence[tuple[Block, dict[bytes, int]]],
        job_of: Callable[[bytes], JobInfo | None],
        next_id: int,
        run: _InFlight,
        known: Mapping[bytes, int | None],
    ) -> tuple[list[Section], list[records.Records], dict[bytes, int]]:
        """The sections of validated blocks as they will be stored (replay rows, dense ids for
        accounts first seen (in global order, from ``next_id`` on), the index record and the
        hosted transactions), their records as the index takes them, and the new ids."""
        mat = self.materializer
        new_ids: dict[bytes, int] = {}  # dense ids first seen in this batch
        new_names: list[bytes] = []  # the same accounts, in id order

        def account_id(a: bytes) -> int:
            found = new_ids.get(a)
            if found is None:
                found = known[a] if a in known else mat.known_id(a)
                if found is None:
                    found = run.account_id(a)
                if found is None:
                    found = new_ids[a] = next_id + len(new_names)
                    new_names.append(a)
            return found

        staged: list[Section] = []
        indexed: list[records.Records] = []
        for b, _ in checked:
            for s, sec in enumerate(b.sections):
                if not sec:
                    continue
                first = next_id + len(new_names)
                rows, senders = [], []
                for tx in sec:
                    rows.append(row_of(tx, self.genesis, job_of, account_id, mat.width))
                    senders.append(account_id(tx.sender))
                names = new_names[first - next_id :]
                ids = [tx.id for tx in sec]
                at = pack_position(b.header.height, s, 0)
                record, found = records.section(at, rows, senders, ids, first, names, mat.width)
                hosted = tuple(i for i, row in enumerate(rows) if row[0] in HOSTED_OPS)
                staged.append(Section(b.header.height, s, sec, record, hosted))
                indexed.append(found)
        return staged, indexed, new_ids

    def _submit_shards(self, staged: Sequence[Section]) -> list[Future[None]]:
        """Start writing staged sections on the shard writers (one future per shard)."""
        if self._writers is None:
            self._writers = Writers(self.store.shards, min(self.n_shards, _WRITERS))
        writers = self._writers
        by_shard: dict[int, list[Section]] = {}
        for x in staged:
            by_shard.setdefault(x.shard, []).append(x)
        return [writers.submit(s, w) for s, w in sorted(by_shard.items())]

    def _write(self, batch: _Batch) -> None:
        """Shard sections first (in parallel), then the commit point."""
        self._commit_point(batch, self._submit_shards(batch.staged))

    def _commit_point(self, batch: _Batch, shards: Sequence[Future[None]]) -> None:
        """Once the signatures all pass and the ``shards`` writes are done, the headers and the
        job index in the metadata environment: the commit point."""
        try:
            for finish in batch.signatures:
                finish()
        finally:
            for f in shards:
                f.result()
        commit_blocks(self.store, batch.headers(), batch.jobs, batch.height)

    # -- the touch commitment -----------------------------------------------------------------

    def follow(self, touches: TouchMap) -> TouchMap:
        """``touches`` brought up to the head from the stored blocks (appends keep it there;
        a read-only handle's refreshes leave it behind until its next use)."""
        if touches.height < self.head.height:
            stage = touches.stage()
            for h in range(touches.height + 1, self.head.height + 1):
                stage.add_block(h, self.sections(h), root=False)
            stage.commit()
        return touches

    def touch_proofs(self, wanted: Mapping[bytes, int], h: int) -> TouchProofs:
        """Prefix proofs (``touches.TouchMap.prove``) of the first ``k`` touches of each
        account in ``wanted`` (account -> k), against the ``touch_root`` of block ``h``. At the
        head this reads the kept map; at an earlier height it builds the map from the index's
        rows up to ``h`` (in proportion to the chain, not the slice)."""
        self._not_streaming("prove touches")
        with self.head.lock:
            if h == self.head.height:
                touches = self.touch_map()
                return {a: touches.prove(a, k) for a, k in wanted.items()}
        past = self.materializer.touches(h)
        return {a: past.prove(a, k) for a, k in wanted.items()}


def _as_block(block: Block | bytes) -> Block:
    if isinstance(block, bytes | bytearray | memoryview):
        return Block.from_bytes(bytes(block))
    if not isinstance(block, Block):
        raise InvalidBlock(f"expected a Block or its bytes, got {type(block).__name__}")
    return block


_POOL_FROM = 64
"""Transactions from which :meth:`Ingestor.append_many` checks signatures on the validator's
pool; below, on its own thread while the shard writes wait on the disk."""

_WRITERS = 8
"""Shard writer threads at most (shard ``s`` is written by writer ``s % _WRITERS``)."""


class _TouchThread:
    """A touch map advanced on one thread, block after block, each committed to it as it is
    added, while the caller validates the rest of each block (a stream): :meth:`root` gives the
    future touch root after a block. Its Numba kernels hold no GIL. Only that thread uses the
    map until :meth:`drain` returns."""

    def __init__(self, touches: TouchMap, pool: ThreadPoolExecutor) -> None:
        self.touches, self.pool = touches, pool
        self.last: Future[bytes] | None = None
        """The block submitted last (the pool's one thread runs them in order)."""

    def root(self, height: int, sections: Sequence[Sequence[Transaction]]) -> Future[bytes]:
        self.last = self.pool.submit(self._add, height, sections)
        return self.last

    def _add(self, height: int, sections: Sequence[Sequence[Transaction]]) -> bytes:
        stage = self.touches.stage()
        found = stage.add_block(height, sections)
        stage.commit()
        return found

    def drain(self) -> None:
        """Wait for every block submitted (their errors reach the callers of their roots)."""
        if self.last is not None:
            wait([self.last])
            self.last = None


class _Skipped(Exception):
    """A streamed block not committed because an earlier one was refused."""


@attrs.define
class _Batch:
    """Consecutive blocks validated (their signature checks maybe still running) and staged
    for the store, not yet stored."""

    checked: list[tuple[Block, dict[bytes, int]]]
    """Each block with its senders' nonce counts after it."""
    nonces: dict[bytes, int]
    """Nonce counts after the batch, of every sender in it."""
    jobs: dict[bytes, JobInfo]
    terms: dict[bytes, DnnJob]
    signatures: list[Callable[[], None]]
    staged: list[Section]
    indexed: list[records.Records]
    new_ids: dict[bytes, int]
    """Dense ids of the accounts the batch shows first."""
    height: int
    head: bytes
    time_ms: int
    next_id: int
    """The first dense id after the batch."""

    def heights(self) -> list[int]:
        return [b.header.height for b, _ in self.checked]

    def headers(self) -> list[Header]:
        return [b.header for b, _ in self.checked]


@attrs.define
class _InFlight:
    """The batches of a stream that are validated but not yet the head, oldest first, with
    their shard writes and commits; lookups see their effects, newest first."""

    batches: deque[_Batch] = attrs.field(factory=deque)
    shards: deque[list[Future[None]]] = attrs.field(factory=deque)
    commits: deque[Future[None]] = attrs.field(factory=deque)
    broken: bool = False
    """Set by the committer when a block fails: nothing after it is committed."""

    def push(self, batch: _Batch, shards: list[Future[None]], commit: Future[None]) -> None:
        self.batches.append(batch)
        self.shards.append(shards)
        self.commits.append(commit)

    def pop(self) -> None:
        self.batches.popleft()
        self.shards.popleft()
        self.commits.popleft()

    def clear(self) -> None:
        self.batches.clear()
        self.shards.clear()
        self.commits.clear()

    def nonce(self, account: bytes) -> int | None:
        for b in reversed(self.batches):
            if account in b.nonces:
                return b.nonces[account]
        return None

    def job(self, job: bytes) -> JobInfo | None:
        for b in reversed(self.batches):
            if job in b.jobs:
                return b.jobs[job]
        return None

    def terms(self, job: bytes) -> DnnJob | None:
        for b in reversed(self.batches):
            if job in b.terms:
                return b.terms[job]
        return None

    def account_id(self, account: bytes) -> int | None:
        for b in self.batches:
            if account in b.new_ids:
                return b.new_ids[account]
        return None
