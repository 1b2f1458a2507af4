"""The materialiser: account states computed on demand from their dependency slices.

It owns the in-memory index derived from the stored section records (dense ids, rows, senders,
transaction ids, the checkpoint mirror) and everything that reads it: slices, opening private
transactions, replay (with the dense fallback), checkpoints and checkpoint policies, batch
states, receipts, cost reports and the eager baseline. It never writes the chain: ingestion
(:mod:`lazyledger.ingest`) does, and hands it the records of each appended batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import attrs
import numpy as np

from lazyledger.chain import Chain
from lazyledger.errors import InvalidRequest, PrivateStateUnavailable, StorageError
from lazyledger.materialize import records, slots, walk
from lazyledger.materialize.cost import CostModel, CostReport
from lazyledger.materialize.host import StoreHost
from lazyledger.materialize.index import NO_CUTS, Checkpoints, ColumnIndex, Cuts, Senders, ranges
from lazyledger.materialize.keyring import Keyring
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.materialize.replay import InitialArrays, Replayed, replay_rows
from lazyledger.materialize.rows import call_row, failed_row, id_matrix, row_ids
from lazyledger.materialize.running import RunningReplay
from lazyledger.materialize.slice import Slice, bounded_slice, compiled_slice, seed
from lazyledger.materialize.snapshot import Snapshot
from lazyledger.model import AccountState, Genesis, Receipt
from lazyledger.ops import REGISTRY, DnnClaim, Op, Status
from lazyledger.shards import Position, end_of, pack_position, unpack_position
from lazyledger.shards.lookup import DenseIds, PrefixIndex
from lazyledger.store import Store
from lazyledger.tables import CHECKPOINTS
from lazyledger.touches import TouchMap

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
INDEX_BATCH = 256
"""Section records of committed blocks queued before the index takes them in, in one extend
(a read of the index takes in whatever is queued first): its fixed per-call work is paid once
per batch rather than once per small block."""


@attrs.define(eq=False)
class Head:
    """The committed head a ledger handle answers at, and the lock appends (and the first
    index build) take: shared by ingestion and materialisation."""

    height: int
    id: bytes
    lock: threading.Lock = attrs.field(factory=threading.Lock)


class Materializer:
    """Materialises account states of one store from its index; see the module docstring."""

    def __init__(
        self,
        store: Store,
        chain: Chain,
        genesis: Genesis,
        head: Head,
        checkpoint_policy: CheckpointPolicy | None = None,
        checkpoint_background: bool = False,
    ) -> None:
        if checkpoint_policy is not None and not isinstance(checkpoint_policy, CheckpointPolicy):
            raise InvalidRequest("checkpoint_policy must be a CheckpointPolicy")
        self.store, self.chain, self.genesis, self.head = store, chain, genesis, head
        self.width = REGISTRY.width(genesis)
        """Accounts per replay row on this chain (its widest op's)."""
        self.checkpoint_min_rows = CHECKPOINT_MIN_ROWS
        self.dense_fraction, self.dense_min_rows = DENSE_FRACTION, DENSE_MIN_ROWS
        self.cost_model = CostModel()
        self.checkpoint_policy = checkpoint_policy
        self._genesis_arrays: InitialArrays | None = None
        self._genesis_bounds = np.zeros(1, np.int64)
        self._columns: ColumnIndex | None = None
        self._checkpoints: Checkpoints | None = None
        self._policy_pool = (
            ThreadPoolExecutor(1, thread_name_prefix="lazyledger-checkpoints")
            if checkpoint_background
            else None
        )
        self._policy_jobs: list[Future[int]] = []
        self._policy_lock = threading.Lock()
        self._running: RunningReplay | None = None
        self.accounts = DenseIds()  # with the index below: derived from the stored records
        self.accounts.add(0, b"".join(records.genesis_accounts(genesis)))
        self.senders = Senders()
        self.txids = PrefixIndex()
        self._queued: list[records.Records] = []
        """Records of committed blocks not indexed yet (see :meth:`appended`)."""
        self._queued_ids: dict[bytes, int] = {}
        self._queue_lock = threading.Lock()
        """Taken to queue records, index them or look up the queued ids (after the head's
        lock, never before it)."""

    def close(self) -> None:
        """Finish queued background checkpoint work."""
        if self._policy_pool is not None:
            self._policy_pool.shutdown(wait=True)

    def host(self) -> StoreHost:
        return StoreHost(self.chain)

    # -- the index ----------------------------------------------------------------------------

    def appended(self, found: Callable[[], Sequence[records.Records]]) -> None:
        """Take the records of blocks just committed (``found`` gives them; not called when
        the index is not built yet: the first use builds it from the store). They wait in a
        queue, indexed together once :data:`INDEX_BATCH` sections have come or at the next
        read of the index, so a stream of small blocks pays the index's per-call work once per
        batch; their new accounts' ids are known at once (:meth:`known_id`). Call it holding
        the head's lock, before the head moves."""
        if self._columns is None:
            return
        parts = found()
        with self._queue_lock:
            for part in parts:
                if not len(part):
                    continue
                first, names = len(self.accounts) + len(self._queued_ids), part.names
                self._queued_ids.update(
                    (names[32 * i : 32 * i + 32], first + i) for i in range(len(names) // 32)
                )
                self._queued.append(part)
            if len(self._queued) >= INDEX_BATCH:
                self._take_queued()

    def _take_queued(self) -> None:
        """Index the queued records (holding the queue's lock)."""
        if self._queued and self._columns is not None:
            found = records.concat(self._queued, self.width)
            self._queued, self._queued_ids = [], {}
            self.extend(self._columns, found)

    @property
    def next_id(self) -> int:
        """The dense id the next account first seen will get."""
        with self._queue_lock:
            return len(self.accounts) + len(self._queued_ids)

    def known_id(self, account: bytes) -> int | None:
        """The dense id of ``account``, queued records included, without indexing them (for
        ingestion, holding the head's lock, once the index is built)."""
        with self._queue_lock:
            found = self.accounts.id_of(account)
            return self._queued_ids.get(account) if found is None else found

    def known_ids(self, accounts: Sequence[bytes]) -> list[int | None]:
        """:meth:`known_id` of each of ``accounts`` (32 bytes each), looked up together."""
        with self._queue_lock:
            out = self.accounts.ids_of(accounts)
            if self._queued_ids:
                queued = self._queued_ids.get
                out = [queued(a) if k is None else k for a, k in zip(accounts, out, strict=True)]
            return out

    def sent_indexed(self, account_id: int, end: int) -> int:
        """Transactions ``account_id`` sent below packed position ``end`` in the indexed
        records, not the queued ones: exact for an account that sent none of those (the
        ingestor's nonce cache holds every one that did)."""
        return self.senders.sent_before(account_id, end)

    def ensure_index(self) -> None:
        """Build the index if it is not yet (outside the head's lock: building takes it);
        unlike :meth:`index`, queued records stay queued."""
        if self._columns is None or self._checkpoints is None:
            self.index()

    def index(self) -> tuple[ColumnIndex, Checkpoints]:
        """The columnar index and checkpoint mirror, built on first use from the stored section
        records and checkpoints (derived data, with the dense ids, senders and tx id lookup
        beside them; kept current by ingestion through :meth:`appended`, whose queue a read
        takes in first: under the queue's lock, not the head's, so a read never waits for an
        append)."""
        columns, checkpoints = self._columns, self._checkpoints
        if columns is None or checkpoints is None:
            with self.head.lock:  # no append may land between the scan and the first extend
                return self.index_held()
        if self._queued:
            with self._queue_lock:
                self._take_queued()
        return columns, checkpoints

    def index_held(self) -> tuple[ColumnIndex, Checkpoints]:
        """:meth:`index`, for a caller holding the head's lock."""
        if self._columns is None:
            columns = ColumnIndex(self.width)
            self.extend(columns, records.read(self.store, 0, self.head.height, self.width))
            self._columns = columns
        with self._queue_lock:
            self._take_queued()
        if self._checkpoints is None:
            self._checkpoints = self._load_checkpoints()
        return self._columns, self._checkpoints

    def touches(self, height: int, held: bool = False) -> TouchMap:
        """The touch commitment after block ``height`` (at most the head), built from the
        index: a row's dense ids are its access set (``TouchMap.from_columns``). ``held``: the
        caller holds the head's lock."""
        columns, _ = self.index_held() if held else self.index()
        n = columns.count_before(end_of(height))
        ids = id_matrix(columns.rows[:n])
        names = self.accounts.names
        if ids.shape[1] == 2:
            return TouchMap.from_columns(ids[:, 0], ids[:, 1], columns.pos[:n], names, height)
        # wider rows: each (account, position) pair once, as a one-account row
        pos = np.repeat(columns.pos[:n], ids.shape[1]).reshape(ids.shape)
        first = np.ones(ids.shape, bool)
        for j in range(1, ids.shape[1]):
            first[:, j] = ~(ids[:, j : j + 1] == ids[:, :j]).any(axis=1)
        flat = ids[first]
        return TouchMap.from_columns(flat, flat, pos[first], names, height)

    def extend(self, columns: ColumnIndex, found: records.Records) -> None:
        """Index section records that follow the indexed ones in global order: their new
        dense ids, rows, senders and transaction ids."""
        if not len(found):
            return
        expect = len(self.accounts) + np.cumsum(found.new) - found.new
        bad = np.flatnonzero(found.firsts != expect)
        if len(bad):
            at = int(found.positions[bad[0]])
            raise StorageError(f"the section record at {at:#x} gives ids out of order")
        self.accounts.add(len(self.accounts), found.names)
        columns.extend_rows(
            found.positions, found.counts, records.replay_rows(found, self.accounts.names)
        )
        positions = columns.pos[columns.n - len(found) : columns.n]
        self.senders.extend(found.fixed["sender"], positions)
        self.txids.add(found.txids, positions)

    def _load_checkpoints(self) -> Checkpoints:
        """The stored checkpoints, each checked (a damaged one is left out: no cut there)."""
        out = Checkpoints()
        for (position, _), batch in self.store.cache_entries(CHECKPOINTS):
            out.add(position, *batch)
        return out

    def account_id(self, account: bytes) -> int | None:
        """The dense id ingestion gave ``account`` (None: it never appeared)."""
        self.index()
        return self.accounts.id_of(account)

    def genesis_sorted(self) -> InitialArrays:
        """Genesis balances as arrays sorted by dense id, then asset (for seeding slices)."""
        if self._genesis_arrays is None:
            g = InitialArrays.of(self.genesis.balances, self.account_id)
            order = np.lexsort((g.assets, g.ids))
            self._genesis_arrays = InitialArrays(g.ids[order], g.assets[order], g.values[order])
            top = int(g.ids.max(initial=-1)) + 1  # genesis accounts hold the first dense ids
            self._genesis_bounds = np.searchsorted(g.ids[order], np.arange(top + 1))
        return self._genesis_arrays

    # -- slices and replay -------------------------------------------------------------------

    def slice_for(
        self,
        needs: dict[bytes, int],
        use_checkpoints: bool = True,
        extra: int | None = None,
    ) -> Slice:
        """The slice giving each account's state before ``needs[account]`` (a packed position),
        plus the row at position ``extra`` (a receipt's transaction) and what it needs."""
        columns, checkpoints = self.index()
        cuts = checkpoints.arrays() if use_checkpoints else NO_CUTS
        walks: list[tuple[int, int, int]] = []
        for account, p in needs.items():
            aid = self.account_id(account)
            if aid is not None:
                walks.append((aid, columns.start(aid, columns.count_before(p)), p))
        rows: list[int] = []
        if extra is not None:
            g = columns.count_before(extra)
            rows.append(g)
            walks += [(a, before, extra) for a, before in columns.prev(g)]
        return compiled_slice(columns, walks, cuts, rows)

    def _cut_holdings(self, cuts: Cuts, key: int) -> dict[int, int]:
        """Non-zero holdings of the virtual account ``key`` (id << 31 | cut) at its cut,
        assets ascending."""
        account_id, cut = key >> 31, key & ((1 << 31) - 1)
        if cut:
            return cuts.holdings(cut)
        g = self.genesis_sorted()
        lo, hi = np.searchsorted(g.ids, [account_id, account_id + 1])
        assets, values = g.assets[lo:hi].tolist(), g.values[lo:hi].tolist()
        return {a: v for a, v in zip(assets, values, strict=True) if v}

    def _seed(self, sl: Slice) -> InitialArrays:
        genesis = self.genesis_sorted()
        return seed(sl, genesis, self._genesis_bounds)

    def open_private(
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
            tx = self.chain.hosted(pos)
            opened = keyring.open(tx, self.genesis)
            if opened is None:
                unreadable.append((pos, tx.id))
            elif isinstance(opened, Status):
                out[pos] = failed_row(row, opened)
            else:
                # the sealed call's accounts are within the envelope's (checked on opening)
                ids = row_ids(row).__getitem__
                out[pos] = call_row(tx.sender, opened, self.genesis, ids, self.width)
        unreadable.sort()
        return out, unreadable

    def _unreadable(self, sl: Slice, keyring: Keyring) -> list[tuple[int, bytes]]:
        private = np.flatnonzero(sl.rows["op"] == Op.PRIVATE)
        if not len(private):
            return []
        found = {int(sl.positions[i]): sl.rows[i].tobytes() for i in private.tolist()}
        return self.open_private(found, keyring)[1]

    def replay(self, sl: Slice, keyring: Keyring, initial: InitialArrays | None = None) -> Replayed:
        """Replay a slice from ``initial`` (default: its cuts' holdings), private rows opened
        with ``keyring`` (PrivateStateUnavailable if one cannot be)."""
        rows = sl.rows
        private = np.flatnonzero(rows["op"] == Op.PRIVATE)
        if len(private):
            found = {int(sl.positions[i]): rows[i].tobytes() for i in private.tolist()}
            opened, unreadable = self.open_private(found, keyring)
            if unreadable:
                raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
            rows = rows.copy()
            for i in private.tolist():
                rows[i] = np.frombuffer(opened[int(sl.positions[i])], rows.dtype)[0]
        positions = sl.positions
        host = self.host().replay_host(rows, lambda i: int(positions[i]))
        return replay_rows(rows, self._seed(sl) if initial is None else initial, host)

    def slice(self, account: bytes, h: int, use_checkpoints: bool = True) -> list[Position]:
        """Positions of the transactions replayed to materialise ``account`` at height ``h``,
        in global order (cut at stored checkpoints unless ``use_checkpoints`` is False)."""
        sl = self.slice_for({account: end_of(h)}, use_checkpoints)
        return [unpack_position(p) for p in sl.positions.tolist()]

    def state(self, account: bytes, h: int, keyring: Keyring) -> AccountState:
        """The state of ``account`` after block ``h``, materialised by replaying its
        dependency slice only (or, past ``dense_fraction`` of the chain, one dense replay).
        Private transactions in the slice are opened with ``keyring``; if one cannot be,
        PrivateStateUnavailable names them and the last height at which the state is known."""
        end = end_of(h)
        columns, checkpoints = self.index()
        aid = self.accounts.id_of(account)
        if aid is None:  # never seen: not in genesis, never touched
            return AccountState(0, {})
        nonce = self.senders.sent_before(aid, end)
        cuts = checkpoints.arrays()
        n = columns.count_before(end)
        cut, first = walk.probe(columns.links, columns.last, cuts.first, cuts.pos, aid, n, end)
        if first == -2:  # no touch since the cut (a checkpoint, or genesis): the cut is the state
            return AccountState.split(nonce, self._cut_holdings(cuts, (aid << 31) | cut))
        big = max(self.dense_min_rows, int(self.dense_fraction * n))
        within = None
        if n > big and len(self.accounts) * (len(self.genesis.assets) + 2) < DENSE_MAX_CELLS:
            walks = [(aid, first, end)]
            within = bounded_slice(columns, walks, cuts, limit=big)
            if within is None:  # most of the chain: one dense replay of it is cheaper
                dense = self._dense_holdings(aid, n)
                if dense is not None:
                    if n >= self.checkpoint_min_rows:
                        self._write_checkpoint(account, aid, end, dense)
                    return AccountState.split(nonce, dense)
        sl = within if within is not None else self.slice_for({account: end})
        key = sl.key_of(aid, end)
        held = self._cut_holdings(sl.cuts, key)
        if not len(sl):  # the cut (a checkpoint, or genesis) is the state
            return AccountState.split(nonce, {a: v for a, v in sorted(held.items()) if v})
        private = bool((sl.rows["op"] == Op.PRIVATE).any())
        try:
            replayed = self.replay(sl, keyring)
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
        columns, _ = self.index()
        running = RunningReplay(self.genesis_sorted())
        running.advance(columns.rows[:n])
        if account_id < len(running.taint) and running.taint[account_id]:
            return None
        _, _, assets, values = running.snapshot(np.array([account_id], np.int64))
        return dict(zip(assets.tolist(), values.tolist(), strict=True))

    def sent(self, account: bytes, height: int) -> int:
        """Transactions ``account`` sent in blocks 1..height (from the in-memory sender chains:
        O(1) at the head)."""
        aid = self.account_id(account)
        if aid is None:
            return 0
        return self.senders.sent_before(aid, end_of(height))

    def _last_known(self, account: bytes, height: int, keyring: Keyring) -> int:
        """The greatest height <= ``height`` whose slice this keyring can read entirely (slices
        grow with height, so readability is monotone and a bisection finds it)."""
        lo, hi = 0, height  # known(lo) holds: genesis needs nothing
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._unreadable(self.slice_for({account: end_of(mid)}), keyring):
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
        self.store.cache_put(CHECKPOINTS, (position, int(ids[0])), (ids, counts, assets, values))
        _, checkpoints = self.index()
        checkpoints.add(position, ids, counts, assets, values)

    def checkpoint_count(self) -> int:
        """Checkpoints held: (account, position) pairs whose state is stored."""
        _, checkpoints = self.index()
        return len(checkpoints)

    def _batch(
        self, ids: np.ndarray, end: int, keyring: Keyring
    ) -> tuple[Slice, list[dict[int, int]]]:
        """One closure and one replay for several accounts (distinct dense ids) before
        ``end``: the slice and each account's holdings there."""
        columns, checkpoints = self.index()
        sl = compiled_slice(columns, columns.needs(ids, end), checkpoints.arrays())
        keys = sl.cuts.keys(ids, end)
        held = self._cut_holdings_each(sl.cuts, keys)
        if not len(sl):
            return sl, held
        replayed = self.replay(sl, keyring)
        vids = slots.find_slots(sl.table, sl.keys, keys).tolist()
        return sl, [
            replayed.holdings(b"", h, v) if v >= 0 else h for h, v in zip(held, vids, strict=True)
        ]

    def _cut_holdings_each(self, cuts: Cuts, keys: np.ndarray) -> list[dict[int, int]]:
        """:meth:`_cut_holdings` of each virtual key (assets ascending), gathered with one
        pass over the checkpoints' arrays and one over genesis."""
        genesis, bounds = self.genesis_sorted(), self._genesis_bounds
        accounts, cut = keys >> 31, keys & ((1 << 31) - 1)
        at = cut > 0
        lo, hi = np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
        ck = at.nonzero()[0]  # cut at a checkpoint
        lo[ck], hi[ck] = cuts.lo[cut[ck] - 1], cuts.hi[cut[ck] - 1]
        born = (~at & (accounts < len(bounds) - 1)).nonzero()[0]  # genesis holders, uncut
        lo[born], hi[born] = bounds[accounts[born]], bounds[accounts[born] + 1]
        picked = ranges(lo, hi)
        from_cut = np.repeat(at, hi - lo)
        assets, values = np.empty(len(picked), np.int64), np.empty(len(picked), np.int64)
        for source, rows in ((cuts, from_cut), (genesis, ~from_cut)):
            assets[rows] = source.assets[picked[rows]]
            values[rows] = source.values[picked[rows]]
        a, v, out, o = assets.tolist(), values.tolist(), [], 0
        for n in (hi - lo).tolist():
            out.append({x: y for x, y in zip(a[o : o + n], v[o : o + n], strict=True) if y})
            o += n
        return out

    def states(self, wanted: list[bytes], h: int, keyring: Keyring) -> dict[bytes, AccountState]:
        """The states of several accounts after block ``h``, equal to :meth:`state` for each,
        from one closure and one replay of the union of their slices (the per-account steps,
        nonces and cut holdings, in vectorised passes)."""
        end = end_of(h)
        self.index()
        known = {a: k for a in wanted if (k := self.accounts.id_of(a)) is not None}
        ids = np.unique(np.fromiter(known.values(), np.int64, len(known)))
        nonces = self.senders.sent_before_each(ids, end).tolist()
        try:
            _, held = self._batch(ids, end, keyring)
        except PrivateStateUnavailable:
            return {a: self.state(a, h, keyring) for a in wanted}  # names the blockers
        found = {
            k: AccountState.split(n, x) for k, n, x in zip(ids.tolist(), nonces, held, strict=True)
        }
        return {a: found[known[a]] if a in known else AccountState(0, {}) for a in wanted}

    # -- checkpoints and policies ------------------------------------------------------------

    def after_append(self, heights: Sequence[int]) -> None:
        """Run the checkpoint policy at the heights of blocks just made durable that it is due
        at (in the background thread if there is one)."""
        policy = self.checkpoint_policy
        if policy is None:
            return
        due = [h for h in heights if policy.due(h)]
        if due and self._policy_pool is not None:
            self._policy_jobs = [j for j in self._policy_jobs if not j.done()]
            self._policy_jobs.append(self._policy_pool.submit(self._apply, policy, due))
        elif due:
            self._apply(policy, due)

    def drop_checkpoints(self) -> int:
        """Delete every stored checkpoint (derived data: results never change, only the cost
        of later queries); returns how many there were."""
        cache = self.store.cache
        with self.head.lock, cache.write() as txn:
            n = int(txn.stat(cache.db[CHECKPOINTS.name])["entries"])
            txn.drop(cache.db[CHECKPOINTS.name], delete=False)
            self._checkpoints = None if self._columns is None else Checkpoints()
        return n

    def run_checkpoint_policy(self, policy: CheckpointPolicy | None = None) -> int:
        """Apply ``policy`` (default: this materialiser's) at every due height of the stored
        chain, in order; returns the number of checkpoints written."""
        policy = policy if policy is not None else self.checkpoint_policy
        if not isinstance(policy, CheckpointPolicy):
            raise InvalidRequest("run_checkpoint_policy needs a CheckpointPolicy")
        return self._apply(policy, range(policy.every, self.head.height + 1, policy.every))

    def wait_checkpoints(self) -> None:
        """Wait until background checkpoint work queued so far is done (re-raising its error)."""
        jobs, self._policy_jobs = self._policy_jobs, []
        for job in jobs:
            job.result()

    def _apply(self, policy: CheckpointPolicy, heights: Iterable[int]) -> int:
        """Checkpoint what ``policy`` picks at each of ``heights``; returns how many. One
        running eager replay serves every due height (see :mod:`..materialize.running`)."""
        columns, checkpoints = self.index()
        written = 0
        with self._policy_lock:
            for h in sorted(set(heights)):
                end = end_of(h)
                hi = columns.count_before(end)
                running = self._running
                if running is None or running.done > hi:
                    running = self._running = RunningReplay(self.genesis_sorted())
                running.advance(columns.rows[running.done : hi])
                lo = columns.count_before(end_of(max(0, h - policy.every)))
                picked = policy.pick(columns.ids(lo, hi).reshape(-1))
                if checkpoints.at_position(end):  # (a state query or an earlier run wrote one)
                    picked = picked[~checkpoints.arrays().has(picked, end)]
                batch = running.snapshot(picked)
                if len(batch[0]):
                    self._write_checkpoints(end, *batch)
                    written += len(batch[0])
            checkpoints.arrays()  # merged here, not by the next query
        return written

    def receipt(self, at: Position, keyring: Keyring) -> Receipt:
        """Whether the transaction at ``at`` applied, materialised from the slice it depends
        on."""
        h, s, i = at
        pos = pack_position(h, s, i)
        sl = self.slice_for({}, extra=pos)
        replayed = self.replay(sl, keyring)
        status = int(replayed.status[int(np.searchsorted(sl.positions, pos))])
        return Receipt(status == 0, REGISTRY.reason(status), (h, s, i))

    def cost(self, account: bytes, h: int, keyring: Keyring) -> CostReport:
        """What materialising ``account`` at ``h`` would take, computed from the index without
        replaying anything: slice size and spread, private dependencies (and how many
        ``keyring`` cannot read), and an estimated time from the calibrated ``cost_model``."""
        sl = self.slice_for({account: end_of(h)})
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
        host = self.host()
        n = 0
        for pos in sl.positions[sl.rows["op"] == Op.DNN_CLAIM].tolist():
            call = self.chain.hosted(pos).call
            assert isinstance(call, DnnClaim)
            n += host.memo(call.job, call.weights) is None
        return n

    def replay_all(self, h: int, keyring: Keyring) -> Snapshot:
        """The eager baseline: replay every transaction of blocks 1..h and return the state of
        every account the chain has seen (genesis, access sets and senders) as a read-only
        mapping. Eager replay needs every private transaction: an unreadable one raises
        PrivateStateUnavailable."""
        columns, _ = self.index()
        n = columns.count_before(end_of(h))
        rows, positions = columns.rows[:n], columns.pos[:n]
        op = rows["op"]
        senders = rows["id0"].astype(np.int64)
        others: dict[bytes, int] = {}  # nonces of senders without a dense id
        extra: list[int] = []  # dense ids of senders not in their row's first column
        named: dict[int, bytes] = {}

        def sent_by(account: bytes, count: int = 1) -> None:
            k = self.account_id(account)
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
            opened, unreadable = self.open_private(found, keyring)
            if unreadable:
                raise PrivateStateUnavailable(None, [x for _, x in unreadable], None)
            rows = rows.copy()
            for i in private:
                rows[i] = np.frombuffer(opened[int(positions[i])], rows.dtype)[0]
                sent_by(self.chain.hosted(int(positions[i])).sender)
        plain = ~(mint | (op == Op.PRIVATE))
        ids = id_matrix(rows).reshape(-1)
        gen = self.genesis_sorted()
        top = int(max(ids.max(initial=-1), gen.ids.max(initial=-1), *extra, -1)) + 1
        nonces = np.bincount(
            np.concatenate([senders[plain], np.array(extra, np.int64)]), minlength=top
        )
        seen = np.zeros(top, bool)
        seen[ids] = True
        names = np.zeros(top, "V32")
        for j in range(self.width):
            names[rows[f"id{j}"]] = rows[f"acc{j}"]
        for account in self.genesis.balances:
            k = self.account_id(account)
            if k is not None:
                seen[k] = True
                names[k] = np.frombuffer(account, "V32")[0]
        for k, account in named.items():
            seen[k] = True
            names[k] = np.frombuffer(account, "V32")[0]
        host = self.host().replay_host(rows, lambda i: int(positions[i]))
        replayed = replay_rows(rows, gen, host)
        return Snapshot(names, seen, nonces, replayed, self.genesis.balances, others)
