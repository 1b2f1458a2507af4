"""The Ledger facade: create/open a store, propose and append blocks (validated, never
executed: :mod:`lazyledger.ingest`), and materialise account states lazily from their
dependency slices (:mod:`lazyledger.materialize.engine`). What both halves read of the stored
chain sits below them (:mod:`lazyledger.chain`)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

from lazyledger.chain import Chain
from lazyledger.crypto import Keypair
from lazyledger.errors import (
    HeightOutOfRange,
    InvalidRequest,
    LedgerError,
    NotFound,
    ReadOnlyLedger,
)
from lazyledger.ingest import HOSTED_OPS, STREAM_DEPTH, Ingestor, TouchProofs
from lazyledger.materialize import dnn, records
from lazyledger.materialize.blobs import BlobRule, JobTerms, references
from lazyledger.materialize.cost import CostModel, CostReport
from lazyledger.materialize.engine import (
    CHECKPOINT_MIN_ROWS,
    DENSE_FRACTION,
    DENSE_MAX_CELLS,
    DENSE_MIN_ROWS,
    Head,
    Materializer,
)
from lazyledger.materialize.host import StoreHost, blob_hash
from lazyledger.materialize.index import Checkpoints, ColumnIndex
from lazyledger.materialize.keyring import Keyring
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.materialize.replay import InitialArrays
from lazyledger.materialize.slice import Slice
from lazyledger.materialize.snapshot import Snapshot
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import DnnJob, JobInfo, OpSpec
from lazyledger.ops.registry import adopt
from lazyledger.shards import Position, unpack_position
from lazyledger.shards.lookup import prefix
from lazyledger.store import DEFAULT_MAP_SIZE, StorageStats, Store
from lazyledger.touches import TouchMap
from lazyledger.validate import Validator, check_genesis

__all__ = [
    "CHECKPOINT_MIN_ROWS",
    "DENSE_FRACTION",
    "DENSE_MAX_CELLS",
    "DENSE_MIN_ROWS",
    "EXECUTORS",
    "HOSTED_OPS",
    "BatchExecutor",
    "Ledger",
    "TouchProofs",
]


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
    """A sharded ledger on LMDB. Blocks are validated statelessly and stored (its
    :class:`Ingestor`); account states are computed on demand by replaying only their
    dependency slices (its :class:`Materializer`). Both share the head and its lock."""

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
        self.chain = Chain(store)
        self.genesis = genesis
        self.ops: tuple[OpSpec, ...] = ()
        """The embedder ops this chain runs (its genesis declares them)."""
        self.genesis_id = genesis.id
        self.n_shards = genesis.n_shards
        self.keyring = keyring if keyring is not None else Keyring()
        height = store.head()
        self.head = Head(height, self.genesis_id if height == 0 else self.chain.header(height).id)
        self.materializer = Materializer(
            store, self.chain, genesis, self.head, checkpoint_policy, checkpoint_background
        )
        self.validator = Validator(genesis, workers)
        self.blob_rule = BlobRule(genesis.max_blob_bytes, self.chain.held_blob, self.has_blob)
        self._touches: TouchMap | None = None
        self.ingestor = Ingestor(
            store,
            self.chain,
            genesis,
            self.head,
            self.validator,
            self.blob_rule,
            self.materializer,
            self._touch_map,
            self._drop_touches,
        )
        self._procs: tuple[int, ProcessPoolExecutor] | None = None
        self._executors: dict[str, BatchExecutor] = {}

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
        if checkpoint_policy is not None and not isinstance(checkpoint_policy, CheckpointPolicy):
            raise InvalidRequest("checkpoint_policy must be a CheckpointPolicy")
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
        if checkpoint_policy is not None and not isinstance(checkpoint_policy, CheckpointPolicy):
            raise InvalidRequest("checkpoint_policy must be a CheckpointPolicy")
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
        with self.head.lock:
            head = self.store.head()
            if head > self.head.height:
                after = self.head.height
                width = self.materializer.width
                self.materializer.appended(lambda: [records.read(self.store, after, head, width)])
                self.ingestor.nonces.clear()
                self.head.height = head
                self.head.id = self._header_id(head)
        return self.head.height

    def close(self) -> None:
        if self._procs is not None:
            self._procs[1].shutdown()
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()
        self.materializer.close()
        self.ingestor.close()
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

    # -- settings (the materialiser's) --------------------------------------------------------

    @property
    def checkpoint_min_rows(self) -> int:
        """A materialisation that replayed at least this many transactions writes a
        checkpoint."""
        return self.materializer.checkpoint_min_rows

    @checkpoint_min_rows.setter
    def checkpoint_min_rows(self, value: int) -> None:
        self.materializer.checkpoint_min_rows = value

    @property
    def dense_fraction(self) -> float:
        """Share of the chain past which a cold ``state`` replays densely (DESIGN.md)."""
        return self.materializer.dense_fraction

    @dense_fraction.setter
    def dense_fraction(self, value: float) -> None:
        self.materializer.dense_fraction = value

    @property
    def dense_min_rows(self) -> int:
        return self.materializer.dense_min_rows

    @dense_min_rows.setter
    def dense_min_rows(self, value: int) -> None:
        self.materializer.dense_min_rows = value

    @property
    def cost_model(self) -> CostModel:
        """The calibrated model behind :meth:`cost`'s time estimates."""
        return self.materializer.cost_model

    @cost_model.setter
    def cost_model(self, value: CostModel) -> None:
        self.materializer.cost_model = value

    @property
    def checkpoint_policy(self) -> CheckpointPolicy | None:
        """The policy applied as blocks are appended (None: none)."""
        return self.materializer.checkpoint_policy

    @checkpoint_policy.setter
    def checkpoint_policy(self, value: CheckpointPolicy | None) -> None:
        self.materializer.checkpoint_policy = value

    # -- reading the chain --------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the last appended block (0: only genesis)."""
        return self.head.height

    @property
    def head_id(self) -> bytes:
        """Hash of the head block (the genesis hash at height 0)."""
        return self.head.id

    def _header_id(self, height: int) -> bytes:
        return self.genesis_id if height == 0 else self.header(height).id

    def _check_height(self, height: int | None) -> int:
        if height is None:
            return self.head.height
        if self.store.readonly and isinstance(height, int) and height > self.head.height:
            self.refresh()
        if not isinstance(height, int) or not 0 <= height <= self.head.height:
            raise HeightOutOfRange(height, self.head.height)
        return height

    def header(self, height: int) -> Header:
        """The header of block ``height`` (1..head)."""
        if not isinstance(height, int) or not 1 <= height <= self.head.height:
            raise HeightOutOfRange(height, self.head.height)
        return self.chain.header(height)

    def section(self, height: int, shard: int) -> list[Transaction]:
        """The transactions of one shard section."""
        if not isinstance(shard, int) or not 0 <= shard < self.n_shards:
            raise NotFound("shard", shard)
        self.header(height)
        return self.chain.section(height, shard)

    def block(self, height: int) -> Block:
        header = self.header(height)
        return Block(header, tuple(tuple(self.section(height, s)) for s in range(self.n_shards)))

    def blocks(self, start: int = 1, stop: int | None = None) -> Iterator[Block]:
        for h in range(start, (self.head.height if stop is None else stop) + 1):
            yield self.block(h)

    def position(self, tx_id: bytes) -> Position:
        """Where a transaction is, by id."""
        tx_id = _id32(tx_id, "transaction")
        self.materializer.index()
        for packed in self.materializer.txids.get(prefix(tx_id)):  # candidates: check the id
            if self.chain.is_at(tx_id, packed):
                return unpack_position(packed)
        raise NotFound("transaction", tx_id)

    def transaction(self, tx_id: bytes) -> Transaction:
        h, s, i = self.position(tx_id)
        return self.section(h, s)[i]

    def job(self, job: bytes) -> JobInfo | None:
        """What the job index holds of job account ``job`` (None: no such job)."""
        return self.chain.job(job)

    def job_terms(self, job: bytes) -> DnnJob | None:
        """The dnn_job call of a job account in a stored block (None: no such job)."""
        return self.chain.job_terms(job)

    def job_transaction(self, job: bytes) -> Transaction:
        """The dnn_job transaction behind a job account."""
        found = self.job(job)
        if found is None:
            raise NotFound("job", bytes(job))
        return self.chain.hosted(found.position)

    # -- writing (the ingestor) ---------------------------------------------------------------

    def nonce(self, account: bytes) -> int:
        """Transactions ``account`` has sent so far: the nonce its next transaction must carry."""
        return self.ingestor.nonce(_id32(account))

    def check_transaction(self, tx: Transaction) -> None:
        """Stateless admission check (mempool): form, signature, and a nonce not yet used."""
        self.ingestor.check_transaction(tx)

    def propose(self, txs: Iterable[Transaction], proposer: Keypair) -> Block:
        """The next block holding ``txs`` (grouped by shard, given order kept), signed by
        ``proposer``. It is not appended; pass it to :meth:`append`."""
        return self.ingestor.propose(txs, proposer)

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
        return self.ingestor.append_many(blocks)

    def append_stream(
        self, blocks: Iterable[Block | bytes], depth: int = STREAM_DEPTH
    ) -> Generator[Header, None, None]:
        """Append consecutive blocks one by one, each with its own durable commit (as
        :meth:`append` would), yielding each block's header once it is durable; the next
        block is validated while the previous ones are being stored (a pipeline: a node
        syncing small blocks keeps one commit per block and loses less to the disk's sync).

        The first refused block stops the stream with the error :meth:`append` raises for
        it: the blocks before it stay stored (their headers are yielded first), and nothing of
        it or after it is stored (up to ``depth`` blocks after it may have been read and
        validated meanwhile: a bad signature is found while later blocks validate). The head's lock
        is held until the stream ends or is closed: other threads' appends and touch proofs
        wait, and this thread may not append, propose or read nonces from inside the loop
        (InvalidRequest). ``depth``: the blocks in flight at most (InvalidRequest unless a
        positive integer)."""
        if self.store.readonly:
            raise ReadOnlyLedger("appending blocks")
        return self.ingestor.append_stream(blocks, depth)

    def touch_proofs(self, wanted: Mapping[bytes, int], height: int | None = None) -> TouchProofs:
        """Prefix proofs (``touches.TouchMap.prove``) of the first ``k`` touches of each
        account in ``wanted`` (account -> k), against the ``touch_root`` of block ``height``.
        At the head this reads the kept map; at an earlier height it builds the map from the
        index's rows up to that height (Numba hashing; in proportion to the chain, not the
        slice)."""
        return self.ingestor.touch_proofs(wanted, self._check_height(height))

    def _drop_touches(self) -> None:
        """Forget the kept touch map (a refused stream left it ahead of the head)."""
        self._touches = None

    def _touch_map(self) -> TouchMap:
        """The touch commitment at the head (built from the index on first use, then kept up
        to date by appends and refreshes). Call it holding the head's lock."""
        if self._touches is None:
            h = self.head.height
            self._touches = self.materializer.touches(h, held=True) if h else TouchMap()
        return self.ingestor.follow(self._touches)

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
        self.chain.put_blob(key, data)
        return key

    def get_blob(self, key: bytes) -> bytes:
        """A blob by hash; BlobMissing (naming the hash) if this node does not hold it."""
        return self.chain.blob(_id32(key, "blob"))

    def has_blob(self, key: bytes) -> bool:
        return self.chain.has_blob(_id32(key, "blob"))

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

    # -- materialisation (the materialiser) ---------------------------------------------------

    def slice(
        self, account: bytes, height: int | None = None, *, use_checkpoints: bool = True
    ) -> list[Position]:
        """Positions of the transactions replayed to materialise ``account`` at ``height``, in
        global order (cut at stored checkpoints unless ``use_checkpoints`` is False)."""
        account = _id32(account)
        return self.materializer.slice(account, self._check_height(height), use_checkpoints)

    def state(
        self, account: bytes, height: int | None = None, *, keyring: Keyring | None = None
    ) -> AccountState:
        """The state of ``account`` after block ``height`` (default: the head), materialised by
        replaying its dependency slice only. Private transactions in the slice are opened with
        ``keyring`` (default: the ledger's); if one cannot be, PrivateStateUnavailable names
        them and the last height at which the state is known."""
        account = _id32(account)
        h = self._check_height(height)
        return self.materializer.state(account, h, self.keyring if keyring is None else keyring)

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
        return self.materializer.states(wanted, h, keyring)

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

    def receipt(self, tx_id: bytes, *, keyring: Keyring | None = None) -> Receipt:
        """Whether a transaction applied, materialised from the slice it depends on."""
        keyring = self.keyring if keyring is None else keyring
        return self.materializer.receipt(self.position(tx_id), keyring)

    def cost(
        self, account: bytes, height: int | None = None, *, keyring: Keyring | None = None
    ) -> CostReport:
        """What materialising ``account`` would take, computed from the index without replaying
        anything: slice size and spread, private dependencies (and how many ``keyring`` cannot
        read), and an estimated time from the calibrated ``cost_model``."""
        account = _id32(account)
        h = self._check_height(height)
        return self.materializer.cost(account, h, self.keyring if keyring is None else keyring)

    def replay_all(self, height: int | None = None, *, keyring: Keyring | None = None) -> Snapshot:
        """The eager baseline: replay every transaction of blocks 1..height and return the state
        of every account the chain has seen (genesis, access sets and senders) as a read-only
        mapping. Eager replay needs every private transaction: an unreadable one raises
        PrivateStateUnavailable."""
        h = self._check_height(height)
        return self.materializer.replay_all(h, self.keyring if keyring is None else keyring)

    # -- checkpoints (the materialiser) -------------------------------------------------------

    def checkpoint_count(self) -> int:
        """Checkpoints held: (account, position) pairs whose state is stored."""
        return self.materializer.checkpoint_count()

    def drop_checkpoints(self) -> int:
        """Delete every stored checkpoint (derived data: results never change, only the cost
        of later queries); returns how many there were."""
        if self.readonly:
            raise ReadOnlyLedger("dropping checkpoints")
        return self.materializer.drop_checkpoints()

    def run_checkpoint_policy(self, policy: CheckpointPolicy | None = None) -> int:
        """Apply ``policy`` (default: the ledger's) at every due height of the stored chain, in
        order; returns the number of checkpoints written."""
        if self.readonly:
            raise ReadOnlyLedger("running a checkpoint policy")
        return self.materializer.run_checkpoint_policy(policy)

    def wait_checkpoints(self) -> None:
        """Wait until background checkpoint work queued so far is done (re-raising its error)."""
        self.materializer.wait_checkpoints()

    # -- the index, for tests and benchmarks (the materialiser's) -----------------------------

    def _index(self) -> tuple[ColumnIndex, Checkpoints]:
        return self.materializer.index()

    def _account_id(self, account: bytes) -> int | None:
        """The dense id ingestion gave ``account`` (None: it never appeared)."""
        return self.materializer.account_id(account)

    def _sent(self, account: bytes, height: int) -> int:
        return self.materializer.sent(account, height)

    def _slice(
        self, needs: dict[bytes, int], use_checkpoints: bool = True, extra: int | None = None
    ) -> Slice:
        return self.materializer.slice_for(needs, use_checkpoints, extra)

    def _genesis_sorted(self) -> InitialArrays:
        return self.materializer.genesis_sorted()

    def _host(self) -> StoreHost:
        return self.materializer.host()


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
