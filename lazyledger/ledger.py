"""The Ledger facade: create/open a store, propose and append blocks (validated, never
executed), and materialise account states lazily from their dependency slices."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np

from lazyledger.codec import decode_section, encode_section
from lazyledger.crypto import Keypair
from lazyledger.errors import (
    HeightOutOfRange,
    InvalidBlock,
    InvalidRequest,
    InvalidTransaction,
    NotFound,
    PrivateStateUnavailable,
)
from lazyledger.materialize import dnn
from lazyledger.materialize.cost import CostModel, CostReport
from lazyledger.materialize.host import StoreHost, blob_hash, job_index_value, read_job_index
from lazyledger.materialize.keyring import Keyring
from lazyledger.materialize.replay import InitialArrays, Replayed, replay_rows
from lazyledger.materialize.rows import (
    ROW,
    ROW_DTYPE,
    call_row,
    failed_row,
    row_accounts,
    row_ids,
    row_of,
)
from lazyledger.materialize.slice import Reader, Slice, closure
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import (
    REASONS,
    DnnClaim,
    DnnJob,
    DnnReveal,
    JobInfo,
    Op,
    Private,
    Status,
    job_account,
)
from lazyledger.shards import Position, end_of, pack_position, shard_of, unpack_position
from lazyledger.shards.merkle import root
from lazyledger.store import DEFAULT_MAP_SIZE, Store, encode_holdings, get, need, read_u64, u64
from lazyledger.validate import Validator, check_genesis

CHECKPOINT_MIN_ROWS = 64
"""A materialisation that replayed at least this many transactions writes a checkpoint."""
HOSTED_OPS = frozenset({Op.PRIVATE, Op.DNN_JOB, Op.DNN_CLAIM, Op.DNN_INFER})
"""Transactions also stored whole by position: replay needs more than their row."""


class Ledger:
    """A sharded ledger on LMDB. Blocks are validated statelessly and stored; account states
    are computed on demand by replaying only their dependency slices."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        workers: int | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.genesis_id = genesis.id
        self.n_shards = genesis.n_shards
        self.validator = Validator(genesis, workers)
        self.checkpoint_min_rows = CHECKPOINT_MIN_ROWS
        self.keyring = keyring if keyring is not None else Keyring()
        self.cost_model = CostModel()
        self._genesis_arrays: InitialArrays | None = None
        self._io: ThreadPoolExecutor | None = None
        self._write_lock = threading.Lock()
        self._nonces: dict[bytes, int] = {}
        self._ids: dict[bytes, int] = {}
        self._next_id = 0
        self._assign_genesis_ids()
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
    ) -> Ledger:
        """Create a new ledger at ``path`` (shards may live in ``shard_dirs``, one per shard)."""
        check_genesis(genesis)
        store = Store.create(Path(path), genesis.to_bytes(), genesis.n_shards, shard_dirs, map_size)
        return cls(store, genesis, workers, keyring)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        workers: int | None = None,
        keyring: Keyring | None = None,
    ) -> Ledger:
        """Reopen a ledger; a block whose append was interrupted is rolled back."""
        store, genesis = Store.open(Path(path), map_size)
        return cls(store, Genesis.from_bytes(genesis), workers, keyring)

    def close(self) -> None:
        if self._io is not None:
            self._io.shutdown()
        self.validator.close()
        self.store.close()

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

    def _header_id(self, height: int) -> bytes:
        return self.genesis_id if height == 0 else self.header(height).id

    def _check_height(self, height: int | None) -> int:
        if height is None:
            return self._height
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
        with self.store.meta.read() as txn:
            raw = txn.get(tx_id, db=self.store.meta.db["txids"])
        if raw is None:
            raise NotFound("transaction", tx_id)
        return unpack_position(read_u64(raw))

    def transaction(self, tx_id: bytes) -> Transaction:
        h, s, i = self.position(tx_id)
        return self.section(h, s)[i]

    def nonce(self, account: bytes) -> int:
        """Transactions ``account`` has sent so far: the nonce its next transaction must carry."""
        account = _id32(account)
        cached = self._nonces.get(account)
        if cached is not None:
            return cached
        with self._write_lock:  # no append may land between the read and the cache write
            with Reader(self.store) as r:
                n = r.sent_count(account, shard_of(account, self.n_shards), self._height)
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
        )
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
        decoded = [_as_block(b) for b in blocks]
        with self._write_lock:
            height, head = self._height, self._head_id
            nonces: dict[bytes, int] = {}
            jobs: dict[bytes, JobInfo] = {}  # job-index entries this batch creates or updates

            def job_of(job: bytes) -> JobInfo | None:
                return jobs[job] if job in jobs else self.job(job)

            checked: list[tuple[Block, dict[bytes, int]]] = []
            with Reader(self.store) as r:

                def nonce_of(a: bytes) -> int:
                    for known in (nonces, self._nonces):
                        if a in known:
                            return known[a]
                    return r.sent_count(a, shard_of(a, self.n_shards), self._height)

                signatures = []
                for block in decoded:
                    height += 1
                    counts, finish = self.validator.check_block_deferred(
                        block, head, height, nonce_of, job_of
                    )
                    signatures.append(finish)
                    nonces.update(counts)
                    for pos, tx in block.transactions():  # index updates seen by later blocks
                        c = tx.call
                        if isinstance(c, DnnJob):
                            at = pack_position(*pos)
                            info = JobInfo(at, c.asset, c.bounty, tx.sender, c.hidden, False)
                            jobs[job_account(tx.id)] = info
                        elif isinstance(c, DnnReveal):
                            revealed = job_of(c.job)
                            assert revealed is not None  # validated
                            jobs[c.job] = attrs.evolve(revealed, revealed=True)
                    head = block.header.id
                    checked.append((block, counts))
            if not checked:
                return []
            new_ids: dict[bytes, int] = {}  # dense ids first seen in this batch, global order

            def account_id(a: bytes) -> int:
                found = new_ids.get(a)
                if found is None:
                    found = self._account_id(a)
                    if found is None:
                        found = new_ids[a] = self._next_id + len(new_ids)
                return found

            rows = [
                [[row_of(tx, self.genesis, job_of, account_id) for tx in sec] for sec in b.sections]
                for b, _ in checked
            ]
            try:
                # Shard sections are stored while the signature checks still run; only the
                # metadata commit (after every signature passed) makes the blocks part of the
                # chain, and a refusal rolls the shard writes back.
                self._write(checked, rows, jobs, new_ids, signatures)
            except BaseException:
                self.store.recover()  # drop the shard writes: the commit point was not reached
                raise
            self._nonces.update(nonces)
            self._remember_ids(new_ids)
            self._next_id += len(new_ids)
            self._height, self._head_id = height, head
            return [b.header for b, _ in checked]

    def _account_id(self, account: bytes) -> int | None:
        """The dense id ingestion gave ``account`` (None: it never appeared)."""
        found = self._ids.get(account)
        if found is None:
            meta = self.store.meta
            with meta.read() as txn:
                raw = get(txn, account, meta.db["ids"])
            if raw is None:
                return None
            found = int.from_bytes(raw, "big")
            self._remember_ids({account: found})
        return found

    def _remember_ids(self, ids: dict[bytes, int]) -> None:
        if len(self._ids) + len(ids) > 1 << 21:
            self._ids.clear()
        self._ids.update(ids)

    def _assign_genesis_ids(self) -> None:
        """Dense ids for the genesis accounts (sorted), before any block: done once."""
        meta = self.store.meta
        with meta.read() as txn:
            raw = get(txn, b"next_id", meta.db["info"])
        if raw is not None:
            self._next_id = read_u64(raw)
            return
        accounts = sorted(set(self.genesis.balances) | set(self.genesis.pools))
        with meta.write() as txn:
            txn.cursor(meta.db["ids"]).putmulti(
                (a, i.to_bytes(4, "big")) for i, a in enumerate(accounts)
            )
            txn.put(b"next_id", u64(len(accounts)), db=meta.db["info"])
        self._next_id = len(accounts)

    def _write(
        self,
        checked: list[tuple[Block, dict[bytes, int]]],
        rows: list[list[list[bytes]]],
        jobs: dict[bytes, JobInfo],
        new_ids: dict[bytes, int],
        signatures: Sequence[Callable[[], None]] = (),
    ) -> None:
        """Shard sections first (in parallel: their commits wait on the disk, not the GIL),
        then, once ``signatures`` all pass, the headers and the id index in the metadata
        environment: the commit point."""
        work = [
            (
                s,
                [
                    (b.header.height, b.sections[s], c, r[s])
                    for (b, c), r in zip(checked, rows, strict=True)
                    if b.sections[s]
                ],
            )
            for s in range(self.n_shards)
        ]
        work = [(s, w) for s, w in work if w]
        if self._io is None:
            self._io = ThreadPoolExecutor(max(2, self.n_shards), thread_name_prefix="lazyledger-io")
        pending = [self._io.submit(self._write_shard, s, w) for s, w in work]
        try:
            for finish in signatures:
                finish()
        finally:
            done = [f.result() for f in pending]
        txids = sorted(x for ids in done for x in ids)
        meta = self.store.meta
        with meta.write() as txn:
            for block, _ in checked:
                txn.put(u64(block.height), block.header.to_bytes(), db=meta.db["headers"])
            txn.cursor(meta.db["txids"]).putmulti(txids)
            if jobs:
                entries = sorted((j, job_index_value(info)) for j, info in jobs.items())
                txn.cursor(meta.db["jobs"]).putmulti(entries)
            if new_ids:
                ids = sorted((a, i.to_bytes(4, "big")) for a, i in new_ids.items())
                txn.cursor(meta.db["ids"]).putmulti(ids)
                txn.put(b"next_id", u64(self._next_id + len(new_ids)), db=meta.db["info"])
            txn.put(b"head", u64(checked[-1][0].height), db=meta.db["info"])

    def _write_shard(
        self,
        s: int,
        sections: Sequence[tuple[int, Sequence[Transaction], dict[bytes, int], list[bytes]]],
    ) -> list[tuple[bytes, bytes]]:
        """Store one shard's sections (height, transactions, senders' nonce counts after that
        block) with their indexes, in one transaction; returns the (id, position) pairs."""
        store, env = self.store, self.store.shards[s]
        txids: list[tuple[bytes, bytes]] = []
        touches: list[tuple[bytes, bytes]] = []
        sent: list[tuple[bytes, bytes]] = []
        hosted: list[tuple[bytes, bytes]] = []
        blobs: list[tuple[bytes, bytes, bytes]] = []
        for h, section, counts, rows in sections:
            hkey = u64(h)
            senders: set[bytes] = set()
            for i, (tx, row) in enumerate(zip(section, rows, strict=True)):
                packed = pack_position(h, s, i)
                pos = u64(packed)
                txids.append((tx.id, pos))
                a0, a1 = row_accounts(row)
                touches.append((a0 + pos, row))
                if a1 != a0:
                    touches.append((a1 + pos, row))
                senders.add(tx.sender)
                if row[0] in HOSTED_OPS:
                    hosted.append((pos, tx.raw))
            sent += [(a + hkey, u64(counts[a])) for a in senders]
            blobs.append(
                (hkey, store.compress(encode_section(section)), store.compress(b"".join(rows)))
            )
        touches.sort()
        sent.sort()
        with env.write() as txn:
            for hkey, body, rows_blob in blobs:
                txn.put(hkey, body, db=env.db["bodies"])
                txn.put(hkey, rows_blob, db=env.db["rows"])
            txn.cursor(env.db["touch"]).putmulti(touches)
            txn.cursor(env.db["sent"]).putmulti(sent)
            if hosted:
                txn.cursor(env.db["hosted"]).putmulti(hosted)
            txn.put(b"head", u64(sections[-1][0]), db=env.db["info"])
        return txids

    # -- materialisation ----------------------------------------------------------------------

    def _initial(self, account: bytes) -> dict[int, int]:
        return dict(self.genesis.balances.get(account, {}))

    def _slice(self, r: Reader, needs: dict[bytes, int], use_checkpoints: bool = True) -> Slice:
        return closure(r, needs, self._initial, use_checkpoints)

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
        if kind == "spec":
            dnn.ModelSpec.from_bytes(data)
        elif kind == "dataset":
            dnn.decode_dataset(data)
        elif kind is not None and kind.startswith("weights:"):
            if not all(c in "0123456789abcdefABCDEF" for c in kind[8:]) or len(kind) % 2:
                raise InvalidRequest(f"blob kind {kind!r}: the spec hash is not hex")
            spec = dnn.ModelSpec.from_bytes(self.get_blob(bytes.fromhex(kind[8:])))
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

    def _open_private(
        self, r: Reader, rows: dict[int, bytes], keyring: Keyring
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

    def _replay(self, sl: Slice, rows: dict[int, bytes]) -> tuple[list[int], Replayed]:
        order = sorted(rows)
        data = np.frombuffer(b"".join(rows[p] for p in order), dtype=ROW_DTYPE)
        return order, self._replay_rows(sl, data, order.__getitem__)

    def _replay_rows(self, sl: Slice, data: np.ndarray, position: Callable[[int], int]) -> Replayed:
        initial = {a: held for a, (_, held) in sl.cuts.items()}
        return replay_rows(data, initial, self._host().replay_host(data, position))

    def slice(
        self, account: bytes, height: int | None = None, *, use_checkpoints: bool = True
    ) -> list[Position]:
        """Positions of the transactions replayed to materialise ``account`` at ``height``, in
        global order (cut at stored checkpoints unless ``use_checkpoints`` is False)."""
        h = self._check_height(height)
        with Reader(self.store) as r:
            sl = self._slice(r, {_id32(account): end_of(h)}, use_checkpoints)
        return [unpack_position(p) for p in sl.positions()]

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
        with Reader(self.store) as r:
            sl = self._slice(r, {account: end})
            nonce = r.sent_count(account, shard_of(account, self.n_shards), h)
            order = sorted(sl.raw)
            data = np.frombuffer(b"".join(sl.raw[p] for p in order), dtype=ROW_DTYPE)
            private = bool((data["op"] == Op.PRIVATE).any())
            if private:
                rows, unreadable = self._open_private(r, sl.rows, keyring)
                if unreadable:
                    last = self._last_known(r, account, h, keyring)
                    raise PrivateStateUnavailable(account, [i for _, i in unreadable], last)
        if not order:  # the cut (a checkpoint, or genesis) is the state
            held = {a: v for a, v in sorted(sl.cuts[account][1].items()) if v}
        elif private:
            _, replayed = self._replay(sl, rows)
            held = replayed.holdings(account, sl.cuts[account][1], self._account_id(account))
        else:
            replayed = self._replay_rows(sl, data, lambda i: int.from_bytes(order[i], "big"))
            held = replayed.holdings(account, sl.cuts[account][1], self._account_id(account))
        if len(order) >= self.checkpoint_min_rows and not private:
            # Only states derived from public data are cached: a checkpoint built on a decrypted
            # call would hand private information to an outsider's later query.
            self._write_checkpoint(account, end, held)
        return AccountState.split(nonce, held)

    def _last_known(self, r: Reader, account: bytes, height: int, keyring: Keyring) -> int:
        """The greatest height <= ``height`` whose slice this keyring can read entirely (slices
        grow with height, so readability is monotone and a bisection finds it)."""
        lo, hi = 0, height  # known(lo) holds: genesis needs nothing
        while lo < hi:
            mid = (lo + hi + 1) // 2
            sl = self._slice(r, {account: end_of(mid)})
            if self._open_private(r, sl.rows, keyring)[1]:
                hi = mid - 1
            else:
                lo = mid
        return lo

    def _write_checkpoint(self, account: bytes, position: int, held: dict[int, int]) -> None:
        self.store.cache_put("checkpoints", account + u64(position), encode_holdings(held))

    def receipt(self, tx_id: bytes, *, keyring: Keyring | None = None) -> Receipt:
        """Whether a transaction applied, materialised from the slice it depends on."""
        keyring = self.keyring if keyring is None else keyring
        h, s, i = self.position(tx_id)
        pos = pack_position(h, s, i)
        env = self.store.shards[s]
        with Reader(self.store) as r:
            rows_at = need(r.shard_txns[s], u64(h), env.db["rows"], f"rows of {h}/{s}")
            row = self.store.decompress(rows_at)[ROW.size * i : ROW.size * (i + 1)]
            sl = self._slice(r, dict.fromkeys(row_accounts(row), pos))
            rows, unreadable = self._open_private(r, {**sl.rows, pos: row}, keyring)
        if unreadable:
            raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
        order, replayed = self._replay(sl, rows)
        status = int(replayed.status[order.index(pos)])
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
        with Reader(self.store) as r:
            sl = self._slice(r, {account: end_of(h)})
            private = [p for p, row in sl.rows.items() if row[0] == Op.PRIVATE]
            unreadable = [
                self._hosted(p).id
                for p in sorted(private)
                if not keyring.can_open(_envelope(self._hosted(p)))
            ]
        shards = {unpack_position(p)[1] for p in sl.rows}
        return CostReport(
            account=account,
            height=h,
            slice_txs=len(sl.rows),
            slice_shards=len(shards),
            slice_accounts=len(sl.cuts),
            private_txs=len(private),
            unreadable=unreadable,
            dnn_checks=self._pending_checks(sl.rows),
            estimated_seconds=self.cost_model.estimate(
                len(sl.rows), len(sl.cuts), len(private), self._pending_checks(sl.rows)
            ),
        )

    def _pending_checks(self, rows: dict[int, bytes]) -> int:
        """Claims in ``rows`` whose verdict this node has not memoised (an upper bound on the
        checks materialising them runs: a claim on a closed job needs none)."""
        host = self._host()
        n = 0
        for pos, row in rows.items():
            if row[0] == Op.DNN_CLAIM:
                call = self._hosted(pos).call
                assert isinstance(call, DnnClaim)
                n += host.memo(call.job, call.weights) is None
        return n

    def replay_all(
        self, height: int | None = None, *, keyring: Keyring | None = None
    ) -> dict[bytes, AccountState]:
        """The eager baseline: replay every transaction of blocks 1..height and return the state
        of every account the chain has seen (genesis, access sets and senders). Eager replay
        needs every private transaction: an unreadable one raises PrivateStateUnavailable."""
        h = self._check_height(height)
        keyring = self.keyring if keyring is None else keyring
        sections: list[tuple[int, int, bytes]] = []
        nonces: dict[bytes, int] = {}
        for s, env in enumerate(self.store.shards):
            with env.read() as txn:
                for key, value in txn.cursor(env.db["rows"]):
                    height_of = read_u64(key)
                    if height_of > h:
                        break
                    sections.append((height_of, s, self.store.decompress(value)))
                for key, value in txn.cursor(env.db["sent"]):
                    if read_u64(key, 32) <= h:
                        nonces[bytes(key[:32])] = read_u64(value)
        sections.sort(key=lambda x: (x[0], x[1]))
        data = bytearray(b"".join(v for _, _, v in sections))
        positions = np.concatenate(
            [
                np.arange(len(v) // ROW.size, dtype=np.int64) + pack_position(h, s, 0)
                for h, s, v in sections
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
        rows = np.frombuffer(data, dtype=ROW_DTYPE)
        private = np.flatnonzero(rows["op"] == Op.PRIVATE).tolist()
        if private:
            with Reader(self.store) as r:
                found = {
                    int(positions[i]): bytes(data[ROW.size * i : ROW.size * (i + 1)])
                    for i in private
                }
                opened, unreadable = self._open_private(r, found, keyring)
            if unreadable:
                raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
            for i in private:
                data[ROW.size * i : ROW.size * (i + 1)] = opened[int(positions[i])]
        genesis = self.genesis.balances
        if self._genesis_arrays is None:
            self._genesis_arrays = InitialArrays.of(genesis, self._account_id)
        host = self._host().replay_host(rows, lambda i: int(positions[i]))
        held = replay_rows(rows, self._genesis_arrays, host).all_holdings(genesis)
        accounts = set(held) | set(nonces) | set(genesis)
        return {
            a: AccountState.split(
                nonces.get(a, 0),
                held[a]
                if a in held
                else {k: v for k, v in sorted(genesis.get(a, {}).items()) if v},
            )
            for a in sorted(accounts)
        }


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


def _envelope(tx: Transaction) -> Private:
    assert isinstance(tx.call, Private)
    return tx.call
