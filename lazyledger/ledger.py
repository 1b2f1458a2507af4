"""The Ledger facade: create/open a store, propose and append blocks (validated, never
executed), and materialise account states lazily from their dependency slices."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import attrs
import blake3
import numpy as np

from lazyledger.codec import decode_section, encode_section, section_item
from lazyledger.crypto import Keypair
from lazyledger.errors import (
    HeightOutOfRange,
    InvalidBlock,
    InvalidRequest,
    InvalidTransaction,
    LedgerError,
    NotFound,
    PrivateStateUnavailable,
    ReadOnlyLedger,
    StorageError,
)
from lazyledger.materialize import dnn, records, slots, walk
from lazyledger.materialize.blobs import BlobRule, JobTerms, references
from lazyledger.materialize.cost import CostModel, CostReport
from lazyledger.materialize.host import StoreHost, blob_hash, job_index_value, read_job_index
from lazyledger.materialize.index import (
    NO_CUTS,
    Checkpoints,
    ColumnIndex,
    Cuts,
    Senders,
    decode_batch,
    encode_batch,
)
from lazyledger.materialize.keyring import Keyring
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.materialize.replay import InitialArrays, Replayed, replay_rows
from lazyledger.materialize.rows import (
    ROW_DTYPE,
    call_row,
    failed_row,
    row_ids,
    row_of,
)
from lazyledger.materialize.running import RunningReplay
from lazyledger.materialize.slice import Slice, bounded_slice, compiled_slice, seed
from lazyledger.materialize.snapshot import Snapshot
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import (
    REASONS,
    REGISTRY,
    DnnClaim,
    DnnJob,
    DnnReveal,
    JobInfo,
    Op,
    OpSpec,
    Status,
    job_account,
)
from lazyledger.ops.registry import adopt
from lazyledger.shards import Position, end_of, pack_position, shard_of, unpack_position
from lazyledger.shards.lookup import DenseIds, PrefixIndex, prefix
from lazyledger.shards.merkle import root
from lazyledger.store import (
    DEFAULT_MAP_SIZE,
    StorageStats,
    Store,
    get,
    need,
    read_u64,
    u64,
    unseal,
)
from lazyledger.touches import TouchMap
from lazyledger.touches import build as build_touches
from lazyledger.validate import Validator, check_genesis

TouchProofs = dict[bytes, dict[str, Any]]

CHECKPOINT_MIN_ROWS = 64
"""A materialisation that replayed at least this many transactions writes a checkpoint."""
DENSE_FRACTION = 0.3
"""A cold ``state`` whose slice holds more than this share of the chain's transactions (and at
least ``DENSE_MIN_ROWS``) replays the whole chain up to that height on a dense array instead:
past about 30% that is cheaper than gathering and replaying the slice, and gives the same
state (see DESIGN.md, "Dense fallback")."""
DENSE_MIN_ROWS = 4096
DENSE_MAX_CELLS = 1 << 24
"""The dense fallback is taken only while accounts x assets stays below this many cells."""
HOSTED_OPS = REGISTRY.stored_whole
"""Transactions also stored whole by position: replay needs more than their row."""


class BatchExecutor(Protocol):
    """Runs :meth:`Ledger.states` elsewhere (other processes, other machines). Whatever it
    does, its answer must equal ``ledger.states(accounts, height, keyring=keyring)``."""

    def states(
        self,
        ledger: Ledger,
        accounts: list[bytes],
        height: int,
        keyring: Keyring,
        workers: int | None,
    ) -> dict[bytes, AccountState]: ...

    def close(self) -> None: ...


EXECUTORS: dict[str, Callable[[], BatchExecutor]] = {}
"""Named executors of :meth:`Ledger.states` beyond ``None`` and ``"process"``, registered by
the layers above this one (``"ray"``: :mod:`lazyledger.scale.ray_executor`)."""


class Ledger:
    """A sharded ledger on LMDB. Blocks are validated statelessly and stored; account states
    are computed on demand by replaying only their dependency slices."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        workers: int | None = None,
        keyring: Keyring | None = None,
        checkpoint_policy: CheckpointPolicy | None = None,
        checkpoint_background: bool = False,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.ops: tuple[OpSpec, ...] = ()
        """The embedder ops this chain runs (its genesis declares them)."""
        self.genesis_id = genesis.id
        self.n_shards = genesis.n_shards
        self.validator = Validator(genesis, workers)
        self.blob_rule = BlobRule(genesis.max_blob_bytes, self._held_blob, self.has_blob)
        self.checkpoint_min_rows = CHECKPOINT_MIN_ROWS
        self.dense_fraction, self.dense_min_rows = DENSE_FRACTION, DENSE_MIN_ROWS
        self.keyring = keyring if keyring is not None else Keyring()
        self.cost_model = CostModel()
        self._genesis_arrays: InitialArrays | None = None
        self._genesis_bounds = np.zeros(1, np.int64)
        self._columns: ColumnIndex | None = None
        self._checkpoints: Checkpoints | None = None
        self._io: ThreadPoolExecutor | None = None
        if checkpoint_policy is not None and not isinstance(checkpoint_policy, CheckpointPolicy):
            raise InvalidRequest("checkpoint_policy must be a CheckpointPolicy")
        self.checkpoint_policy = checkpoint_policy
        self._policy_pool = (
            ThreadPoolExecutor(1, thread_name_prefix="lazyledger-checkpoints")
            if checkpoint_background
            else None
        )
        self._policy_jobs: list[Future[int]] = []
        self._policy_lock = threading.Lock()
        self._procs: tuple[int, ProcessPoolExecutor] | None = None
        self._executors: dict[str, BatchExecutor] = {}
        self._running: RunningReplay | None = None
        self._write_lock = threading.Lock()
        self._nonces: dict[bytes, int] = {}
        self._touches: TouchMap | None = None
        self._accounts = DenseIds()  # with the index below: derived from the stored records
        self._accounts.add(0, b"".join(records.genesis_accounts(genesis)))
        self._senders = Senders()
        self._txids = PrefixIndex()
        self._height = store.head()
        self._head_id = self._header_id(self._height)

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        genesis: Genesis,
        *,
        shard_dirs: Sequence[str | os.PathLike[str]] | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
        workers: int | None = None,
        keyring: Keyring | None = None,
        checkpoint_policy: CheckpointPolicy | None = None,
        checkpoint_background: bool = False,
        ops: Sequence[OpSpec] | None = None,
    ) -> Ledger:
        """Create a new ledger at ``path`` (shards may live in ``shard_dirs``, one per shard).
        With ``checkpoint_policy``, checkpoints are written as blocks are appended, after each
        block is durable (in a background thread with ``checkpoint_background``). ``ops`` are
        the embedder-defined operations the genesis declares (``Genesis.ops``)."""
        check_genesis(genesis)
        adopted = adopt(genesis, ops)
        store = Store.create(Path(path), genesis.to_bytes(), genesis.n_shards, shard_dirs, map_size)
        led = cls(store, genesis, workers, keyring, checkpoint_policy, checkpoint_background)
        led.ops = adopted
        return led

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        workers: int | None = None,
        keyring: Keyring | None = None,
        checkpoint_policy: CheckpointPolicy | None = None,
        checkpoint_background: bool = False,
        readonly: bool = False,
        ops: Sequence[OpSpec] | None = None,
    ) -> Ledger:
        """Reopen a ledger; a block whose append was interrupted is rolled back.

        ``readonly=True`` opens a reader beside the owning process (any number of them, in
        other processes): it takes no lock, never writes (checkpoints it derives stay in its
        memory), answers at the height it last saw, and follows the owner's appends with
        :meth:`refresh` (a query naming a higher height refreshes first). ``ops`` must be
        exactly the embedder ops the genesis declares (else :class:`OpsMismatch`)."""
        if readonly and checkpoint_policy is not None:
            raise ReadOnlyLedger("a checkpoint policy")
        store, raw = Store.open(Path(path), map_size, readonly)
        genesis = Genesis.from_bytes(raw)
        try:
            adopted = adopt(genesis, ops)
        except LedgerError:
            store.close()
            raise
        led = cls(store, genesis, workers, keyring, checkpoint_policy, checkpoint_background)
        led.ops = adopted
        return led

    @property
    def readonly(self) -> bool:
        """Whether this handle is a reader beside the owning process."""
        return self.store.readonly

    def refresh(self) -> int:
        """Follow the owner's appends (a read-only handle): take its committed head and index
        the new blocks. Returns the height this handle now answers at."""
        with self._write_lock:
            head = self.store.head()
            if head > self._height:
                if self._columns is not None:
                    self._extend(self._columns, records.read(self.store, self._height, head))
                self._nonces.clear()
                self._height = head
                self._head_id = self._header_id(head)
        return self._height

    def close(self) -> None:
        if self._procs is not None:
            self._procs[1].shutdown()
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()
        if self._policy_pool is not None:
            self._policy_pool.shutdown(wait=True)
        if self._io is not None:
            self._io.shutdown()
        self.validator.close()
        self.store.close()

    def storage_stats(self) -> StorageStats:
        """Map size, map use, free pages and per-table entries and pages of every LMDB
        environment of this ledger (see :class:`lazyledger.store.StorageStats`)."""
        return self.store.stats()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading the chain --------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the last appended block (0: only genesis)."""
        return self._height

    @property
    def head_id(self) -> bytes:
        """Hash of the head block (the genesis hash at height 0)."""
        return self._head_id

    def _head_time(self) -> int:
        """The head block's time (0 at genesis)."""
        return 0 if self._height == 0 else self.header(self._height).time_ms

    def _header_id(self, height: int) -> bytes:
        return self.genesis_id if height == 0 else self.header(height).id

    def _check_height(self, height: int | None) -> int:
        if height is None:
            return self._height
        if self.store.readonly and isinstance(height, int) and height > self._height:
            self.refresh()
        if not isinstance(height, int) or not 0 <= height <= self._height:
            raise HeightOutOfRange(height, self._height)
        return height

    def header(self, height: int) -> Header:
        """The header of block ``height`` (1..head)."""
        if not isinstance(height, int) or not 1 <= height <= self._height:
            raise HeightOutOfRange(height, self._height)
        with self.store.meta.read() as txn:
            raw = need(txn, u64(height), self.store.meta.db["headers"], f"header {height}")
        return Header.from_bytes(raw)

    def section(self, height: int, shard: int) -> list[Transaction]:
        """The transactions of one shard section."""
        if not isinstance(shard, int) or not 0 <= shard < self.n_shards:
            raise NotFound("shard", shard)
        self.header(height)
        env = self.store.shards[shard]
        with env.read() as txn:
            raw = txn.get(u64(height), db=env.db["bodies"])
        return decode_section(self.store.decompress(raw), 0, shard)[0] if raw else []

    def block(self, height: int) -> Block:
        header = self.header(height)
        return Block(header, tuple(tuple(self.section(height, s)) for s in range(self.n_shards)))

    def blocks(self, start: int = 1, stop: int | None = None) -> Iterator[Block]:
        for h in range(start, (self._height if stop is None else stop) + 1):
            yield self.block(h)

    def position(self, tx_id: bytes) -> Position:
        """Where a transaction is, by id."""
        tx_id = _id32(tx_id, "transaction")
        self._index()
        for packed in self._txids.get(prefix(tx_id)):  # candidates: check the whole id
            h, s, i = unpack_position(packed)
            env = self.store.shards[s]
            with env.read() as txn:
                body = need(txn, u64(h), env.db["bodies"], f"the section {h}/{s}")
            if blake3.blake3(section_item(self.store.decompress(body), i)).digest() == tx_id:
                return h, s, i
        raise NotFound("transaction", tx_id)

    def transaction(self, tx_id: bytes) -> Transaction:
        h, s, i = self.position(tx_id)
        return self.section(h, s)[i]

    def nonce(self, account: bytes) -> int:
        """Transactions ``account`` has sent so far: the nonce its next transaction must carry."""
        account = _id32(account)
        cached = self._nonces.get(account)
        if cached is not None:
            return cached
        self._index()  # (built outside the lock, which building takes)
        with self._write_lock:  # no append may land between the read and the cache write
            n = self._sent(account, self._height)
            if len(self._nonces) > 1 << 20:
                self._nonces.clear()
            self._nonces[account] = n
        return n

    def check_transaction(self, tx: Transaction) -> None:
        """Stateless admission check (mempool): form, signature, and a nonce not yet used."""
        self.validator.check_transaction(tx, jobs=self.job)
        expected = self.nonce(tx.sender)
        if tx.nonce < expected:
            raise InvalidTransaction(f"nonce {tx.nonce} already used (next is {expected})")
        self.blob_rule.check(tx, self.job_terms)  # BlobUnavailable: publish the blob first

    # -- writing ------------------------------------------------------------------------------

    def propose(self, txs: Iterable[Transaction], proposer: Keypair) -> Block:
        """The next block holding ``txs`` (grouped by shard, given order kept), signed by
        ``proposer``. It is not appended; pass it to :meth:`append`."""
        sections: list[list[Transaction]] = [[] for _ in range(self.n_shards)]
        for tx in txs:
            sections[shard_of(tx.sender, self.n_shards)].append(tx)
        header = Header(
            self.genesis.chain_id,
            self._height + 1,
            self._head_id,
            tuple(root([t.id for t in sec]) for sec in sections),
            tuple(len(sec) for sec in sections),
            proposer.public_key,
            time_ms=max(time.time_ns() // 1_000_000, self._head_time()),
        )
        with self._write_lock:
            touch_root = self._touch_map().stage().add_block(header.height, sections)
        header = attrs.evolve(header, touch_root=touch_root)
        header = attrs.evolve(header, signature=proposer.sign(header.body))
        return Block(header, tuple(tuple(s) for s in sections))

    def append(self, block: Block | bytes) -> Header:
        """Validate ``block`` statelessly and store it atomically. Nothing is executed: a
        transfer that overdraws is accepted here and fails at materialisation."""
        return self.append_many([block])[0]

    def append_many(self, blocks: Iterable[Block | bytes]) -> list[Header]:
        """Validate consecutive blocks and store them with one commit per environment (a group
        commit: a follower catching up pays the disk's sync cost once per batch, not once per
        block). All or nothing: if any block is invalid, none is stored."""
        if self.store.readonly:
            raise ReadOnlyLedger("appending blocks")
        decoded = [_as_block(b) for b in blocks]
        self._index()  # (built outside the lock, which building takes)
        with self._write_lock:
            height, head, parent_time = self._height, self._head_id, self._head_time()
            nonces: dict[bytes, int] = {}
            jobs: dict[bytes, JobInfo] = {}  # job-index entries this batch creates or updates

            def job_of(job: bytes) -> JobInfo | None:
                return jobs[job] if job in jobs else self.job(job)

            terms: dict[bytes, DnnJob] = {}  # the calls of jobs this batch creates

            def terms_of(job: bytes) -> DnnJob | None:
                return terms[job] if job in terms else self.job_terms(job)

            def blobs(tx: Transaction) -> None:
                self.blob_rule.check(tx, terms_of)

            checked: list[tuple[Block, dict[bytes, int]]] = []

            def nonce_of(a: bytes) -> int:
                for known in (nonces, self._nonces):
                    if a in known:
                        return known[a]
                return self._sent(a, self._height)

            signatures = []
            touches = self._touch_map().stage()
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
            next_id = len(self._accounts)
            new_ids: dict[bytes, int] = {}  # dense ids first seen in this batch
            new_names: list[bytes] = []  # the same accounts, in id order

            def account_id(a: bytes) -> int:
                found = new_ids.get(a)
                if found is None:
                    found = self._account_id(a)
                    if found is None:
                        found = new_ids[a] = next_id + len(new_names)
                        new_names.append(a)
                return found

            staged: list[_Staged] = []
            for b, _ in checked:
                for s, sec in enumerate(b.sections):
                    if not sec:
                        continue
                    first = next_id + len(new_names)
                    rows, senders = [], []
                    for tx in sec:
                        rows.append(row_of(tx, self.genesis, job_of, account_id))
                        senders.append(account_id(tx.sender))
                    names = new_names[first - next_id :]
                    record = records.encode(rows, senders, [tx.id for tx in sec], first, names)
                    hosted = tuple(i for i, row in enumerate(rows) if row[0] in HOSTED_OPS)
                    staged.append(_Staged(b.header.height, s, sec, record, hosted))
            try:
                # Shard sections are stored while the signature checks still run; only the
                # metadata commit (after every signature passed) makes the blocks part of the
                # chain, and a refusal rolls the shard writes back.
                self._write(checked, staged, jobs, signatures)
            except BaseException:
                self.store.recover()  # drop the shard writes: the commit point was not reached
                raise
            touches.commit()
            self._nonces.update(nonces)
            if self._columns is not None:
                found = records.decode(
                    [(pack_position(x.height, x.shard, 0), x.record) for x in staged]
                )
                self._extend(self._columns, found)
            self._height, self._head_id = height, head
        # the blocks are durable: checkpoint work starts only now
        policy = self.checkpoint_policy
        if policy is not None:
            due = [b.height for b, _ in checked if policy.due(b.height)]
            if due and self._policy_pool is not None:
                self._policy_jobs = [j for j in self._policy_jobs if not j.done()]
                self._policy_jobs.append(self._policy_pool.submit(self._apply, policy, due))
            elif due:
                self._apply(policy, due)
        return [b.header for b, _ in checked]

    def _touch_map(self) -> TouchMap:
        """The touch commitment at the head (built from the stored blocks on first use, then
        kept up to date by appends and refreshes). Call it holding the write lock."""
        if self._touches is None:
            self._touches = TouchMap()
        touches = self._touches
        if touches.height < self._height:
            stage = touches.stage()
            for h in range(touches.height + 1, self._height + 1):
                stage.add_block(h, self.block(h).sections, root=False)
            stage.commit()
        return touches

    def touch_proofs(self, wanted: Mapping[bytes, int], height: int | None = None) -> TouchProofs:
        """Prefix proofs (``touches.TouchMap.prove``) of the first ``k`` touches of each
        account in ``wanted`` (account -> k), against the ``touch_root`` of block ``height``.
        At the head this reads the kept map; at an earlier height it rebuilds the map from
        blocks 1..height (cost in proportion to the chain, not the slice)."""
        h = self._check_height(height)
        with self._write_lock:
            if h == self._height:
                touches = self._touch_map()
                return {a: touches.prove(a, k) for a, k in wanted.items()}
        past = build_touches((x, self.block(x).sections) for x in range(1, h + 1))
        return {a: past.prove(a, k) for a, k in wanted.items()}

    def _account_id(self, account: bytes) -> int | None:
        """The dense id ingestion gave ``account`` (None: it never appeared)."""
        self._index()
        return self._accounts.id_of(account)

    def _write(
        self,
        checked: list[tuple[Block, dict[bytes, int]]],
        staged: Sequence[_Staged],
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
        pending = [self._io.submit(self._write_shard, s, w) for s, w in work]
        try:
            for finish in signatures:
                finish()
        finally:
            for f in pending:
                f.result()
        meta = self.store.meta
        with meta.write() as txn:
            txn.cursor(meta.db["headers"]).putmulti(
                [(u64(b.height), b.header.to_bytes()) for b, _ in checked], append=True
            )
            if jobs:
                entries = sorted((j, job_index_value(info)) for j, info in jobs.items())
                txn.cursor(meta.db["jobs"]).putmulti(entries)
            txn.put(b"head", u64(checked[-1][0].height), db=meta.db["info"])

    def _write_shard(self, s: int, sections: Sequence[_Staged]) -> None:
        """Store one shard's sections (body, index record, hosted transactions) in one
        transaction, appended in key order (full pages, no page rewritten)."""
        store, env = self.store, self.store.shards[s]
        bodies: list[tuple[bytes, bytes]] = []
        recs: list[tuple[bytes, bytes]] = []
        hosted: list[tuple[bytes, bytes]] = []
        for x in sections:
            hkey = u64(x.height)
            bodies.append((hkey, store.compress(encode_section(x.txs))))
            recs.append((hkey, store.compress(x.record)))
            hosted += [(u64(pack_position(x.height, s, i)), x.txs[i].raw) for i in x.hosted]
        with env.write() as txn:
            txn.cursor(env.db["bodies"]).putmulti(bodies, append=True)
            txn.cursor(env.db["rows"]).putmulti(recs, append=True)
            if hosted:
                txn.cursor(env.db["hosted"]).putmulti(hosted, append=True)
            txn.put(b"head", u64(sections[-1].height), db=env.db["info"])

    # -- materialisation ----------------------------------------------------------------------

    def _index(self) -> tuple[ColumnIndex, Checkpoints]:
        """The columnar index and checkpoint mirror, built on first use from the stored section
        records and checkpoints (derived data, with the dense ids, senders and tx id lookup
        beside them; kept current by :meth:`append_many`)."""
        columns, checkpoints = self._columns, self._checkpoints
        if columns is not None and checkpoints is not None:
            return columns, checkpoints
        with self._write_lock:  # no append may land between the scan and the first extend
            if self._columns is None:
                columns = ColumnIndex()
                self._extend(columns, records.read(self.store, 0, self._height))
                self._columns = columns
            if self._checkpoints is None:
                self._checkpoints = self._load_checkpoints()
            return self._columns, self._checkpoints

    def _extend(self, columns: ColumnIndex, found: records.Records) -> None:
        """Index section records that follow the indexed ones in global order: their new
        dense ids, rows, senders and transaction ids."""
        if not len(found):
            return
        expect = len(self._accounts) + np.cumsum(found.new) - found.new
        bad = np.flatnonzero(found.firsts != expect)
        if len(bad):
            at = int(found.positions[bad[0]])
            raise StorageError(f"the section record at {at:#x} gives ids out of order")
        self._accounts.add(len(self._accounts), found.names)
        columns.extend_rows(
            found.positions, found.counts, records.replay_rows(found, self._accounts.names)
        )
        positions = columns.pos[columns.n - len(found) : columns.n]
        self._senders.extend(found.fixed["sender"], positions)
        self._txids.add(found.txids, positions)

    def _load_checkpoints(self) -> Checkpoints:
        """The stored checkpoints, each checked (a damaged one is left out: no cut there)."""
        out = Checkpoints()
        cache = self.store.cache
        with cache.read() as txn:
            entries = [(bytes(k), bytes(v)) for k, v in txn.cursor(cache.db["checkpoints"])]
        for key, stored in entries:
            value = unseal(key, stored) if len(key) == 12 else None
            batch = decode_batch(value) if value is not None else None
            if batch is not None:
                out.add(read_u64(key), *batch)
        return out

    def _genesis_sorted(self) -> InitialArrays:
        """Genesis balances as arrays sorted by dense id (for seeding slices)."""
        if self._genesis_arrays is None:
            g = InitialArrays.of(self.genesis.balances, self._account_id)
            order = np.argsort(g.ids, kind="stable")
            self._genesis_arrays = InitialArrays(g.ids[order], g.assets[order], g.values[order])
            top = int(g.ids.max(initial=-1)) + 1  # genesis accounts hold the first dense ids
            self._genesis_bounds = np.searchsorted(g.ids[order], np.arange(top + 1))
        return self._genesis_arrays

    def _slice(
        self,
        needs: dict[bytes, int],
        use_checkpoints: bool = True,
        extra: int | None = None,
    ) -> Slice:
        """The slice giving each account's state before ``needs[account]`` (a packed position),
        plus the row at position ``extra`` (a receipt's transaction) and what it needs."""
        columns, checkpoints = self._index()
        cuts = checkpoints.arrays() if use_checkpoints else NO_CUTS
        walks: list[tuple[int, int, int]] = []
        for account, p in needs.items():
            aid = self._account_id(account)
            if aid is not None:
                walks.append((aid, columns.start(aid, columns.count_before(p)), p))
        rows: list[int] = []
        if extra is not None:
            g = columns.count_before(extra)
            rows.append(g)
            walks += [(a, before, extra) for a, before in columns.prev(g)]
        return compiled_slice(columns, walks, cuts, rows)

    def _cut_holdings(self, cuts: Cuts, key: int) -> dict[int, int]:
        """Holdings of the virtual account ``key`` (id << 31 | cut) at its cut."""
        account_id, cut = key >> 31, key & ((1 << 31) - 1)
        if cut:
            return cuts.holdings(cut)
        g = self._genesis_sorted()
        lo, hi = np.searchsorted(g.ids, [account_id, account_id + 1])
        return dict(zip(g.assets[lo:hi].tolist(), g.values[lo:hi].tolist(), strict=True))

    def _seed(self, sl: Slice) -> InitialArrays:
        genesis = self._genesis_sorted()
        return seed(sl, genesis, self._genesis_bounds)

    def _hosted(self, pos: int) -> Transaction:
        """A private or DNN transaction by position (kept apart so replay never decodes blocks)."""
        _, s, _ = unpack_position(pos)
        env = self.store.shards[s]
        with env.read() as txn:
            return Transaction.from_bytes(need(txn, u64(pos), env.db["hosted"], "a hosted tx"))

    def job(self, job: bytes) -> JobInfo | None:
        """What the job index holds of job account ``job`` (None: no such job)."""
        meta = self.store.meta
        with meta.read() as txn:
            return read_job_index(get(txn, bytes(job), meta.db["jobs"]))

    def job_terms(self, job: bytes) -> DnnJob | None:
        """The dnn_job call of a job account in a stored block (None: no such job)."""
        found = self.job(job)
        call = None if found is None else self._hosted(found.position).call
        return call if isinstance(call, DnnJob) else None

    def job_transaction(self, job: bytes) -> Transaction:
        """The dnn_job transaction behind a job account."""
        found = self.job(job)
        if found is None:
            raise NotFound("job", bytes(job))
        return self._hosted(found.position)

    def _host(self) -> StoreHost:
        def position(job: bytes) -> int | None:
            found = self.job(job)
            return None if found is None else found.position

        return StoreHost(self.store, self._hosted, position)

    # -- blobs --------------------------------------------------------------------------------

    def put_blob(self, data: bytes, kind: str | None = None) -> bytes:
        """Store a content-addressed blob and return its blake3 hash. With ``kind`` ("spec",
        "dataset" or "weights:<spec hash hex>") it is decoded first, and refused with a typed
        error (nothing stored) if malformed."""
        data = bytes(data)
        bound = self.genesis.max_blob_bytes
        if len(data) > bound:
            raise InvalidRequest(f"blob of {len(data)} bytes exceeds max_blob_bytes {bound}")
        if kind == "spec":
            dnn.decode_spec(data)
        elif kind == "dataset":
            dnn.decode_dataset(data)
        elif kind is not None and kind.startswith("weights:"):
            if not all(c in "0123456789abcdefABCDEF" for c in kind[8:]) or len(kind) % 2:
                raise InvalidRequest(f"blob kind {kind!r}: the spec hash is not hex")
            spec = dnn.decode_spec(self.get_blob(bytes.fromhex(kind[8:])))
            dnn.decode_weights(spec, data)
        elif kind is not None:
            raise InvalidRequest(f"unknown blob kind {kind!r} (spec, dataset, weights:<hash>)")
        key = blob_hash(data)
        env = self.store.blobs
        with env.write() as txn:
            txn.put(key, self.store.compress(data), db=env.db["blobs"], overwrite=False)
        return key

    def get_blob(self, key: bytes) -> bytes:
        """A blob by hash; BlobMissing (naming the hash) if this node does not hold it."""
        return self._host().blob(_id32(key, "blob"))

    def has_blob(self, key: bytes) -> bool:
        env = self.store.blobs
        with env.read() as txn:
            return get(txn, _id32(key, "blob"), env.db["blobs"]) is not None

    def _held_blob(self, key: bytes) -> bytes | None:
        env = self.store.blobs
        with env.read() as txn:
            raw = get(txn, key, env.db["blobs"])
        return None if raw is None else self.store.decompress(raw)

    def missing_blobs(self, tx: Transaction, terms: JobTerms | None = None) -> list[bytes]:
        """The blobs ``tx`` references that this node does not hold (a proposer holds such a
        transaction back: it would make its block invalid)."""
        return self.blob_rule.missing(tx, self.job_terms if terms is None else terms)

    def block_blobs(self, height: int) -> list[bytes]:
        """The hashes of every blob the transactions of block ``height`` reference, in order of
        first reference: what a proposer publishes with the block, and a follower fetches."""
        self._check_height(height)
        seen: dict[bytes, None] = {}
        for _, tx in self.block(height).transactions():
            for ref in references(tx, self.job_terms):
                seen.setdefault(ref.blob, None)
        return list(seen)

    def _open_private(
        self, rows: dict[int, bytes], keyring: Keyring
    ) -> tuple[dict[int, bytes], list[tuple[int, bytes]]]:
        """``rows`` with every private row replaced by the row of the call it stands for, and the
        (position, id) of those this keyring cannot read. Decrypted calls stay in memory."""
        out = rows
        unreadable: list[tuple[int, bytes]] = []
        for pos, row in rows.items():
            if row[0] != Op.PRIVATE:
                continue
            if out is rows:
                out = dict(rows)
            tx = self._hosted(pos)
            opened = keyring.open(tx, self.genesis)
            if opened is None:
                unreadable.append((pos, tx.id))
            elif isinstance(opened, Status):
                out[pos] = failed_row(row, opened)
            else:
                # the sealed call's accounts are within the envelope's (checked on opening)
                out[pos] = call_row(tx.sender, opened, self.genesis, row_ids(row).__getitem__)
        unreadable.sort()
        return out, unreadable

    def _unreadable(self, sl: Slice, keyring: Keyring) -> list[tuple[int, bytes]]:
        private = np.flatnonzero(sl.rows["op"] == Op.PRIVATE)
        if not len(private):
            return []
        found = {int(sl.positions[i]): sl.rows[i].tobytes() for i in private.tolist()}
        return self._open_private(found, keyring)[1]

    def _replay(
        self, sl: Slice, keyring: Keyring, initial: InitialArrays | None = None
    ) -> Replayed:
        """Replay a slice from ``initial`` (default: its cuts' holdings), private rows opened
        with ``keyring`` (PrivateStateUnavailable if one cannot be)."""
        rows = sl.rows
        private = np.flatnonzero(rows["op"] == Op.PRIVATE)
        if len(private):
            found = {int(sl.positions[i]): rows[i].tobytes() for i in private.tolist()}
            opened, unreadable = self._open_private(found, keyring)
            if unreadable:
                raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
            rows = rows.copy()
            for i in private.tolist():
                rows[i] = np.frombuffer(opened[int(sl.positions[i])], ROW_DTYPE)[0]
        positions = sl.positions
        host = self._host().replay_host(rows, lambda i: int(positions[i]))
        return replay_rows(rows, self._seed(sl) if initial is None else initial, host)

    def slice(
        self, account: bytes, height: int | None = None, *, use_checkpoints: bool = True
    ) -> list[Position]:
        """Positions of the transactions replayed to materialise ``account`` at ``height``, in
        global order (cut at stored checkpoints unless ``use_checkpoints`` is False)."""
        h = self._check_height(height)
        sl = self._slice({_id32(account): end_of(h)}, use_checkpoints)
        return [unpack_position(p) for p in sl.positions.tolist()]

    def state(
        self, account: bytes, height: int | None = None, *, keyring: Keyring | None = None
    ) -> AccountState:
        """The state of ``account`` after block ``height`` (default: the head), materialised by
        replaying its dependency slice only. Private transactions in the slice are opened with
        ``keyring`` (default: the ledger's); if one cannot be, PrivateStateUnavailable names
        them and the last height at which the state is known."""
        account = _id32(account)
        h = self._check_height(height)
        keyring = self.keyring if keyring is None else keyring
        end = end_of(h)
        nonce = self._sent(account, h)
        aid = self._account_id(account)
        if aid is None:  # never seen: not in genesis, never touched
            return AccountState(nonce, {})
        columns, checkpoints = self._index()
        cuts = checkpoints.arrays()
        cut = walk.cut_index(cuts.ids, cuts.pos, aid, end)
        n = columns.count_before(end)
        first = columns.start(aid, n)
        if first < 0 or columns.pos[first] < (cuts.pos[cut - 1] if cut else 0):
            # no touch since the cut (a checkpoint, or genesis): the cut is the state
            held = self._cut_holdings(cuts, (aid << 31) | cut)
            return AccountState.split(nonce, {a: v for a, v in sorted(held.items()) if v})
        big = max(self.dense_min_rows, int(self.dense_fraction * n))
        within = None
        if n > big and len(self._accounts) * (len(self.genesis.assets) + 2) < DENSE_MAX_CELLS:
            walks = [(aid, first, end)]
            within = bounded_slice(columns, walks, cuts, limit=big)
            if within is None:  # most of the chain: one dense replay of it is cheaper
                dense = self._dense_holdings(aid, n)
                if dense is not None:
                    if n >= self.checkpoint_min_rows:
                        self._write_checkpoint(account, aid, end, dense)
                    return AccountState.split(nonce, dense)
        sl = within if within is not None else self._slice({account: end})
        key = sl.key_of(aid, end)
        held = self._cut_holdings(sl.cuts, key)
        if not len(sl):  # the cut (a checkpoint, or genesis) is the state
            return AccountState.split(nonce, {a: v for a, v in sorted(held.items()) if v})
        private = bool((sl.rows["op"] == Op.PRIVATE).any())
        try:
            replayed = self._replay(sl, keyring)
        except PrivateStateUnavailable as e:
            last = self._last_known(account, h, keyring)
            raise PrivateStateUnavailable(account, e.blocking, last) from None
        vid = sl.vid(key)
        held = replayed.holdings(account, held, vid) if vid is not None else held
        if len(sl) >= self.checkpoint_min_rows and not private:
            # Only states derived from public data are cached: a checkpoint built on a decrypted
            # call would hand private information to an outsider's later query.
            self._write_checkpoint(account, aid, end, held)
        return AccountState.split(nonce, {a: v for a, v in sorted(held.items()) if v})

    def _dense_holdings(self, account_id: int, n: int) -> dict[int, int] | None:
        """The holdings of ``account_id`` after the first ``n`` rows, from one dense replay of
        them (:class:`RunningReplay`); None if a private or DNN row reaches the account (the
        dense replay does not open or run those: the slice path does)."""
        columns, _ = self._index()
        running = RunningReplay(self._genesis_sorted())
        running.advance(columns.rows[:n])
        if account_id < len(running.taint) and running.taint[account_id]:
            return None
        _, _, assets, values = running.snapshot(np.array([account_id], np.int64))
        return dict(zip(assets.tolist(), values.tolist(), strict=True))

    def _sent(self, account: bytes, height: int) -> int:
        """Transactions ``account`` sent in blocks 1..height (from the in-memory sender chains:
        O(1) at the head)."""
        aid = self._account_id(account)
        if aid is None:
            return 0
        return self._senders.sent_before(aid, end_of(height))

    def _last_known(self, account: bytes, height: int, keyring: Keyring) -> int:
        """The greatest height <= ``height`` whose slice this keyring can read entirely (slices
        grow with height, so readability is monotone and a bisection finds it)."""
        lo, hi = 0, height  # known(lo) holds: genesis needs nothing
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._unreadable(self._slice({account: end_of(mid)}), keyring):
                hi = mid - 1
            else:
                lo = mid
        return lo

    def _write_checkpoint(
        self, account: bytes, account_id: int, position: int, held: dict[int, int]
    ) -> None:
        items = sorted((a, v) for a, v in held.items() if v)
        self._write_checkpoints(
            position,
            np.array([account_id], np.int64),
            np.array([len(items)], np.int64),
            np.array([a for a, _ in items], np.int64),
            np.array([v for _, v in items], np.int64),
        )

    def _write_checkpoints(
        self,
        position: int,
        ids: np.ndarray,
        counts: np.ndarray,
        assets: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Store a batch of checkpoints taken at ``position`` (holdings listed account by
        account) as one cache entry, and mirror it in memory."""
        key = u64(position) + int(ids[0]).to_bytes(4, "big")
        self.store.cache_put("checkpoints", key, encode_batch(ids, counts, assets, values))
        _, checkpoints = self._index()
        checkpoints.add(position, ids, counts, assets, values)

    def checkpoint_count(self) -> int:
        """Checkpoints held: (account, position) pairs whose state is stored."""
        _, checkpoints = self._index()
        return len(checkpoints)

    def _batch(
        self, ids: Sequence[int], end: int, keyring: Keyring
    ) -> tuple[Slice, list[dict[int, int]]]:
        """One closure and one replay for several accounts (dense ids) before ``end``: the
        slice and each account's holdings there."""
        columns, checkpoints = self._index()
        limit = columns.count_before(end)
        walks = [(k, columns.start(k, limit), end) for k in ids]
        sl = compiled_slice(columns, walks, checkpoints.arrays())
        keys = [sl.key_of(k, end) for k in ids]
        held = [self._cut_holdings(sl.cuts, key) for key in keys]
        if not len(sl):
            return sl, held
        replayed = self._replay(sl, keyring)
        vids = slots.find_slots(sl.table, sl.keys, np.array(keys, np.int64)).tolist()
        return sl, [
            replayed.holdings(b"", h, v) if v >= 0 else h for h, v in zip(held, vids, strict=True)
        ]

    def states(
        self,
        accounts: Iterable[bytes],
        height: int | None = None,
        *,
        keyring: Keyring | None = None,
        executor: str | BatchExecutor | None = None,
        workers: int | None = None,
    ) -> dict[bytes, AccountState]:
        """The states of several accounts after block ``height``, equal to calling
        :meth:`state` for each, computed with one closure and one replay of the union of their
        slices (work shared where slices overlap). ``executor="process"`` splits the accounts
        over ``workers`` local processes (default: one per core), each with a read-only handle
        on this ledger; ``executor="ray"`` over ``workers`` Ray actors, each with a read-only
        handle on a replica (:class:`lazyledger.RayExecutor`; pass one to choose the cluster
        and the replica paths). The results are identical whatever the executor."""
        wanted = [_id32(a) for a in accounts]
        h = self._check_height(height)
        keyring = self.keyring if keyring is None else keyring
        if executor == "process":
            return self._process_states(wanted, h, keyring, workers)
        if isinstance(executor, str):
            if executor not in EXECUTORS:
                names = ", ".join(repr(n) for n in ("process", *sorted(EXECUTORS)))
                raise InvalidRequest(f"executor {executor!r} is not one of None, {names}")
            if executor not in self._executors:
                self._executors[executor] = EXECUTORS[executor]()
            return self._executors[executor].states(self, wanted, h, keyring, workers)
        if executor is not None:
            if not callable(getattr(executor, "states", None)):
                raise InvalidRequest(
                    f"executor must be None, a name or a BatchExecutor, got {type(executor)!r}"
                )
            return executor.states(self, wanted, h, keyring, workers)
        nonces = {a: self._sent(a, h) for a in wanted}
        known = {a: k for a in wanted if (k := self._account_id(a)) is not None}
        order = sorted(set(known.values()))
        try:
            _, held = self._batch(order, end_of(h), keyring)
        except PrivateStateUnavailable:
            return {a: self.state(a, h, keyring=keyring) for a in wanted}  # names the blockers
        by_id = dict(zip(order, held, strict=True))
        return {
            a: AccountState.split(nonces[a], by_id[known[a]] if a in known else {}) for a in wanted
        }

    def _process_states(
        self, wanted: list[bytes], height: int, keyring: Keyring, workers: int | None
    ) -> dict[bytes, AccountState]:
        """:meth:`states` over local worker processes with read-only handles."""
        n = workers if workers is not None else (os.cpu_count() or 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 256:
            raise InvalidRequest(f"workers must be an integer in 1..256, got {n!r}")
        if self._procs is None or self._procs[0] != n:
            if self._procs is not None:
                self._procs[1].shutdown()
            pool = ProcessPoolExecutor(
                n,
                mp_context=multiprocessing.get_context("spawn"),  # LMDB handles never cross a fork
                initializer=_worker_open,
                initargs=(str(self.store.path), self.ops),
            )
            self._procs = (n, pool)
        distinct = sorted(set(wanted))
        step = -(-len(distinct) // n) if distinct else 1
        chunks = [distinct[i : i + step] for i in range(0, len(distinct), step)]
        futures = [self._procs[1].submit(_worker_states, c, height, keyring) for c in chunks]
        found: dict[bytes, AccountState] = {}
        for f in futures:
            found.update(f.result())
        return {a: found[a] for a in wanted}

    def drop_checkpoints(self) -> int:
        """Delete every stored checkpoint (derived data: results never change, only the cost
        of later queries); returns how many there were."""
        if self.readonly:
            raise ReadOnlyLedger("dropping checkpoints")
        cache = self.store.cache
        with self._write_lock, cache.write() as txn:
            n = int(txn.stat(cache.db["checkpoints"])["entries"])
            txn.drop(cache.db["checkpoints"], delete=False)
            self._checkpoints = None if self._columns is None else Checkpoints()
        return n

    def run_checkpoint_policy(self, policy: CheckpointPolicy | None = None) -> int:
        """Apply ``policy`` (default: the ledger's) at every due height of the stored chain, in
        order; returns the number of checkpoints written."""
        if self.readonly:
            raise ReadOnlyLedger("running a checkpoint policy")
        policy = policy if policy is not None else self.checkpoint_policy
        if not isinstance(policy, CheckpointPolicy):
            raise InvalidRequest("run_checkpoint_policy needs a CheckpointPolicy")
        return self._apply(policy, range(policy.every, self._height + 1, policy.every))

    def wait_checkpoints(self) -> None:
        """Wait until background checkpoint work queued so far is done (re-raising its error)."""
        jobs, self._policy_jobs = self._policy_jobs, []
        for job in jobs:
            job.result()

    def _apply(self, policy: CheckpointPolicy, heights: Iterable[int]) -> int:
        """Checkpoint what ``policy`` picks at each of ``heights``; returns how many. One
        running eager replay serves every due height (see :mod:`..materialize.running`)."""
        columns, checkpoints = self._index()
        written = 0
        with self._policy_lock:
            for h in sorted(set(heights)):
                end = end_of(h)
                hi = columns.count_before(end)
                running = self._running
                if running is None or running.done > hi:
                    running = self._running = RunningReplay(self._genesis_sorted())
                running.advance(columns.rows[running.done : hi])
                lo = columns.count_before(end_of(max(0, h - policy.every)))
                picked = policy.pick(columns.ids(lo, hi).reshape(-1))
                if checkpoints.at_position(end):  # (a state query or an earlier run wrote one)
                    picked = picked[~checkpoints.arrays().has(picked, end)]
                batch = running.snapshot(picked)
                if len(batch[0]):
                    self._write_checkpoints(end, *batch)
                    written += len(batch[0])
        return written

    def receipt(self, tx_id: bytes, *, keyring: Keyring | None = None) -> Receipt:
        """Whether a transaction applied, materialised from the slice it depends on."""
        keyring = self.keyring if keyring is None else keyring
        h, s, i = self.position(tx_id)
        pos = pack_position(h, s, i)
        sl = self._slice({}, extra=pos)
        replayed = self._replay(sl, keyring)
        status = int(replayed.status[int(np.searchsorted(sl.positions, pos))])
        return Receipt(status == 0, REASONS[status], (h, s, i))

    def cost(
        self, account: bytes, height: int | None = None, *, keyring: Keyring | None = None
    ) -> CostReport:
        """What materialising ``account`` would take, computed from the index without replaying
        anything: slice size and spread, private dependencies (and how many ``keyring`` cannot
        read), and an estimated time from the calibrated ``cost_model``."""
        account = _id32(account)
        h = self._check_height(height)
        keyring = self.keyring if keyring is None else keyring
        sl = self._slice({account: end_of(h)})
        private = sl.positions[sl.rows["op"] == Op.PRIVATE].tolist()
        # opened, not just matched by recipient key: a wrapped key that does not open for this
        # keyring (a sender may corrupt one recipient's entry) leaves the call unreadable
        unreadable = [tx_id for _, tx_id in self._unreadable(sl, keyring)]
        shards = {unpack_position(p)[1] for p in sl.positions.tolist()}
        checks = self._pending_checks(sl)
        accounts = sl.accounts()
        return CostReport(
            account=account,
            height=h,
            slice_txs=len(sl),
            slice_shards=len(shards),
            slice_accounts=accounts,
            private_txs=len(private),
            unreadable=unreadable,
            dnn_checks=checks,
            estimated_seconds=self.cost_model.estimate(len(sl), accounts, len(private), checks),
        )

    def _pending_checks(self, sl: Slice) -> int:
        """Claims in the slice whose verdict this node has not memoised (an upper bound on the
        checks materialising them runs: a claim on a closed job needs none)."""
        host = self._host()
        n = 0
        for pos in sl.positions[sl.rows["op"] == Op.DNN_CLAIM].tolist():
            call = self._hosted(pos).call
            assert isinstance(call, DnnClaim)
            n += host.memo(call.job, call.weights) is None
        return n

    def replay_all(self, height: int | None = None, *, keyring: Keyring | None = None) -> Snapshot:
        """The eager baseline: replay every transaction of blocks 1..height and return the state
        of every account the chain has seen (genesis, access sets and senders) as a read-only
        mapping. Eager replay needs every private transaction: an unreadable one raises
        PrivateStateUnavailable."""
        h = self._check_height(height)
        keyring = self.keyring if keyring is None else keyring
        columns, _ = self._index()
        n = columns.count_before(end_of(h))
        rows, positions = columns.rows[:n], columns.pos[:n]
        op = rows["op"]
        senders = rows["id0"].astype(np.int64)
        others: dict[bytes, int] = {}  # nonces of senders without a dense id
        extra: list[int] = []  # dense ids of senders not in their row's first column
        named: dict[int, bytes] = {}

        def sent_by(account: bytes, count: int = 1) -> None:
            k = self._account_id(account)
            if k is None:
                others[account] = others.get(account, 0) + count
            else:
                extra.extend([k] * count)
                named[k] = account

        mint = op == Op.MINT
        assets, counts = np.unique(rows["asset"][mint], return_counts=True)
        for asset, count in zip(assets.tolist(), counts.tolist(), strict=True):
            sent_by(self.genesis.assets[asset], count)  # a mint's sender is the asset's issuer
        private = np.flatnonzero(op == Op.PRIVATE).tolist()
        if private:
            found = {int(positions[i]): rows[i].tobytes() for i in private}
            opened, unreadable = self._open_private(found, keyring)
            if unreadable:
                raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
            rows = rows.copy()
            for i in private:
                rows[i] = np.frombuffer(opened[int(positions[i])], ROW_DTYPE)[0]
                sent_by(self._hosted(int(positions[i])).sender)
        plain = ~(mint | (op == Op.PRIVATE))
        ids = np.concatenate([rows["id0"], rows["id1"]]).astype(np.int64)
        gen = self._genesis_sorted()
        top = int(max(ids.max(initial=-1), gen.ids.max(initial=-1), *extra, -1)) + 1
        nonces = np.bincount(
            np.concatenate([senders[plain], np.array(extra, np.int64)]), minlength=top
        )
        seen = np.zeros(top, bool)
        seen[ids] = True
        names = np.zeros(top, "V32")
        names[rows["id0"]] = rows["acc0"]
        names[rows["id1"]] = rows["acc1"]
        for account in self.genesis.balances:
            k = self._account_id(account)
            if k is not None:
                seen[k] = True
                names[k] = np.frombuffer(account, "V32")[0]
        for k, account in named.items():
            seen[k] = True
            names[k] = np.frombuffer(account, "V32")[0]
        host = self._host().replay_host(rows, lambda i: int(positions[i]))
        replayed = replay_rows(rows, gen, host)
        return Snapshot(names, seen, nonces, replayed, self.genesis.balances, others)


@attrs.frozen
class _Staged:
    """A shard section on its way to the store: its transactions, its index record
    (:mod:`lazyledger.materialize.records`, before zstd) and which of its transactions are also
    stored whole (``HOSTED_OPS``)."""

    height: int
    shard: int
    txs: Sequence[Transaction]
    record: bytes
    hosted: tuple[int, ...]


_WORKER: list[Ledger] = []
"""A worker process's read-only handle (see ``Ledger.states(executor="process")``)."""


def _worker_open(path: str, ops: tuple[OpSpec, ...]) -> None:
    _WORKER.append(Ledger.open(path, readonly=True, ops=ops))


def _worker_states(
    accounts: list[bytes], height: int, keyring: Keyring
) -> dict[bytes, AccountState]:
    return _WORKER[0].states(accounts, height, keyring=keyring)


def _id32(value: object, what: str = "account") -> bytes:
    """``value`` as a 32-byte id, or InvalidRequest naming what was wrong."""
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != 32:
        shown = (
            f"{len(value)} bytes"
            if isinstance(value, bytes | bytearray | memoryview)
            else type(value).__name__
        )
        raise InvalidRequest(f"{what} id must be 32 bytes, got {shown}")
    return bytes(value)


def _as_block(block: Block | bytes) -> Block:
    if isinstance(block, bytes | bytearray | memoryview):
        return Block.from_bytes(bytes(block))
    if not isinstance(block, Block):
        raise InvalidBlock(f"expected a Block or its bytes, got {type(block).__name__}")
    return block
