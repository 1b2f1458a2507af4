"""Ingestion: blocks in, never executed. Propose the next block; admit a transaction; append
blocks: decode, validate statelessly (nonces from the index of counts, jobs from the job index),
stage each shard section (rows, index record, hosted transactions), write the shard sections
beside their rollback (:func:`lazyledger.shards.store.write_sections`, undone by ``Store.recover``),
commit the headers and job index (the commit point), then extend the touch map and the
materialiser's index."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from lazyledger.chain import Chain, commit_blocks
from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidBlock, InvalidTransaction
from lazyledger.materialize import records
from lazyledger.materialize.blobs import BlobRule
from lazyledger.materialize.engine import Head, Materializer
from lazyledger.materialize.rows import row_of
from lazyledger.model import Block, Genesis, Header, Transaction
from lazyledger.ops import REGISTRY, DnnJob, DnnReveal, JobInfo, job_account
from lazyledger.shards import pack_position, shard_of
from lazyledger.shards.merkle import root
from lazyledger.shards.store import Section, write_sections
from lazyledger.store import Store
from lazyledger.touches import TouchMap
from lazyledger.validate import Validator

TouchProofs = dict[bytes, dict[str, Any]]

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
    ) -> None:
        self.store, self.chain, self.genesis, self.head = store, chain, genesis, head
        self.n_shards = genesis.n_shards
        self.validator, self.blob_rule, self.materializer = validator, blob_rule, materializer
        self.nonces: dict[bytes, int] = {}
        """Nonces known at the head (a cache: cleared when a reader follows the owner)."""
        self.touch_map = touch_map
        """The touch commitment at the head, kept by the owner (see :meth:`follow`): call it
        holding the head's lock."""
        self._io: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._io is not None:
            self._io.shutdown()

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
        cached = self.nonces.get(account)
        if cached is not None:
            return cached
        self.materializer.index()  # (built outside the lock, which building takes)
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
        mat = self.materializer
        mat.index()  # (built outside the lock, which building takes)
        with self.head.lock:
            height, head, parent_time = self.head.height, self.head.id, self.head_time()
            nonces: dict[bytes, int] = {}
            jobs: dict[bytes, JobInfo] = {}  # job-index entries this batch creates or updates

            def job_of(job: bytes) -> JobInfo | None:
                return jobs[job] if job in jobs else self.chain.job(job)

            terms: dict[bytes, DnnJob] = {}  # the calls of jobs this batch creates

            def terms_of(job: bytes) -> DnnJob | None:
                return terms[job] if job in terms else self.chain.job_terms(job)

            def blobs(tx: Transaction) -> None:
                self.blob_rule.check(tx, terms_of)

            checked: list[tuple[Block, dict[bytes, int]]] = []

            def nonce_of(a: bytes) -> int:
                for known in (nonces, self.nonces):
                    if a in known:
                        return known[a]
                return mat.sent(a, self.head.height)

            signatures = []
            touches = self.touch_map().stage()
            for block in decoded:
                height += 1
                counts, finish = self.validator.check_block_deferred(
                    block, head, height, nonce_of, job_of, parent_time, blobs, touches.add_block
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
                return []
            staged, indexed = self._stage(checked, job_of)
            try:
                # Shard sections are stored while the signature checks still run; only the
                # metadata commit (after every signature passed) makes the blocks part of the
                # chain, and a refusal rolls the shard writes back.
                self._write(checked, staged, jobs, signatures)
            except BaseException:
                self.store.recover()  # drop the shard writes: the commit point was not reached
                raise
            touches.commit()
            self.nonces.update(nonces)
            mat.appended(lambda: records.concat(indexed, mat.width))
            self.head.height, self.head.id = height, head
        # the blocks are durable: checkpoint work starts only now
        mat.after_append([b.header.height for b, _ in checked])
        return [b.header for b, _ in checked]

    def _stage(
        self,
        checked: Sequence[tuple[Block, dict[bytes, int]]],
        job_of: Callable[[bytes], JobInfo | None],
    ) -> tuple[list[Section], list[records.Records]]:
        """The sections of validated blocks as they will be stored (replay rows, dense ids for
        accounts first seen (in global order), the index record and the hosted transactions),
        and their records as the index takes them."""
        mat = self.materializer
        next_id = len(mat.accounts)
        new_ids: dict[bytes, int] = {}  # dense ids first seen in this batch
        new_names: list[bytes] = []  # the same accounts, in id order

        def account_id(a: bytes) -> int:
            found = new_ids.get(a)
            if found is None:
                found = mat.account_id(a)
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
        return staged, indexed

    def _write(
        self,
        checked: list[tuple[Block, dict[bytes, int]]],
        staged: Sequence[Section],
        jobs: dict[bytes, JobInfo],
        signatures: Sequence[Callable[[], None]] = (),
    ) -> None:
        """Shard sections first (in parallel: their commits wait on the disk, not the GIL),
        then, once ``signatures`` all pass, the headers and the job index in the metadata
        environment: the commit point."""
        work = [(s, [x for x in staged if x.shard == s]) for s in range(self.n_shards)]
        work = [(s, w) for s, w in work if w]
        if self._io is None:
            self._io = ThreadPoolExecutor(max(2, self.n_shards), thread_name_prefix="lazyledger-io")
        shards = self.store.shards
        pending = [self._io.submit(write_sections, shards[s], w) for s, w in work]
        try:
            for finish in signatures:
                finish()
        finally:
            for f in pending:
                f.result()
        commit_blocks(self.store, [b.header for b, _ in checked], jobs, checked[-1][0].height)

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
