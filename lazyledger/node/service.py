"""The node's core, independent of HTTP: one Ledger, the mempool, a state cache and metrics.

Every method here is blocking (LMDB, signatures, replay); the HTTP layer runs them in worker
threads. Appends are serialised by the Ledger; reads run concurrently."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from lazyledger.errors import InvalidTransaction, LedgerError
from lazyledger.ledger import Ledger
from lazyledger.model import AccountState, Block, Header, Transaction
from lazyledger.node.accountant import prove_slice, prove_state
from lazyledger.node.config import NodeConfig
from lazyledger.node.mempool import Journal, Mempool
from lazyledger.node.metrics import Metrics
from lazyledger.node.peers import PeerBook

log = logging.getLogger("lazyledger.node")

JOURNAL_FILE = "mempool.journal"
"""In a proposer's datadir: the transactions it acknowledged and has not yet put in a block."""


class NodeService:
    """What a node does, as plain methods: admit transactions, append blocks, answer queries."""

    def __init__(self, ledger: Ledger, config: NodeConfig, mode: str) -> None:
        self.ledger = ledger
        self.config = config
        self.mode = mode  # "proposer", "follower" or "observer"
        self.mempool = Mempool(config.mempool_size)
        self.metrics = Metrics(ledger.storage_stats)
        self.metrics.height.set(ledger.height)
        self.upstream: str | None = config.follow
        self._cache: OrderedDict[tuple[bytes, int], AccountState] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.synced_at: float | None = None  # follower: the last sync round that succeeded
        self.upstream_height: int | None = None  # follower: the upstream's last known height
        self.upstream_error: str | None = None  # follower: why the last sync round failed
        self.journal: Journal | None = None
        self.peers = PeerBook()  # followers that fetched from this node recently
        if mode == "proposer":
            self.journal = Journal(config.datadir / JOURNAL_FILE)
            self._restore()

    def _restore(self) -> None:
        """Re-admit what the journal holds (a restart, or a kill, left it there), dropping what
        is already in a block or can no longer be (stale nonce, invalid), then compact it."""
        assert self.journal is not None
        raws = self.journal.load()
        kept = 0
        for raw in raws:
            try:
                tx = self.check(raw)
                if tx.nonce >= self.ledger.nonce(tx.sender) and self.mempool.add(tx):
                    kept += 1
            except LedgerError:
                continue
        self.journal.rewrite(self.mempool.pending())
        self.metrics.mempool.set(len(self.mempool))
        if raws:
            log.info("mempool restored", extra={"journal": len(raws), "pending": kept})

    def close(self) -> None:
        """Release the journal (its content stays for the next start)."""
        if self.journal is not None:
            self.journal.close()

    # -- intake ---------------------------------------------------------------------------------

    def check(self, raw: bytes) -> Transaction:
        """Decode and statelessly check a transaction (InvalidTransaction if it is bad)."""
        tx = Transaction.from_bytes(raw)
        if tx.raw != raw:
            raise InvalidTransaction("transaction bytes are not canonical")
        self.ledger.check_transaction(tx)
        return tx

    def submit(self, raw: bytes) -> tuple[Transaction, bool]:
        """Admit a transaction to the mempool; (tx, False) if it was already pending or is
        already in a block. Raises InvalidTransaction, NonceConflict or MempoolFull."""
        try:
            tx = Transaction.from_bytes(raw)
            if tx.id in self.mempool:
                return tx, False
            tx = self.check(raw)
            added = self.mempool.add(tx)
            if added and self.journal is not None:
                try:
                    self.journal.append(tx)  # before the acknowledgement
                except LedgerError:
                    self.mempool.remove([tx])
                    raise
        except Exception as e:
            self.metrics.txs.labels(type(e).__name__).inc()
            raise
        self.metrics.txs.labels("accepted" if added else "duplicate").inc()
        self.metrics.mempool.set(len(self.mempool))
        return tx, added

    def next_nonce(self, account: bytes) -> tuple[int, int]:
        committed = self.ledger.nonce(account)
        return committed, self.mempool.next_nonce(account, committed)

    # -- blocks ---------------------------------------------------------------------------------

    def commit(self, block: Block | bytes) -> Header:
        """Validate and store a block (never executing it), then drop its txs from the mempool."""
        return self.commit_many([block])[-1]

    def commit_many(self, blocks: Sequence[Block | bytes]) -> list[Header]:
        """Validate and store consecutive blocks with one group commit (a follower catching
        up), then drop their txs from the mempool. All or nothing."""
        t0 = time.perf_counter()
        decoded = [Block.from_bytes(b) if isinstance(b, bytes) else b for b in blocks]
        headers = self.ledger.append_many(decoded)
        self.mempool.remove(tx for block in decoded for sec in block.sections for tx in sec)
        if self.journal is not None:
            try:
                self.journal.compact(self.mempool)
            except LedgerError as e:  # the blocks are stored; the journal only grows longer
                log.warning("mempool journal not compacted", extra={"reason": str(e)})
        m = self.metrics
        m.append_seconds.observe(time.perf_counter() - t0)
        m.mempool.set(len(self.mempool))
        for header in headers:
            n = sum(header.shard_counts)
            m.blocks.inc()
            m.block_txs.inc(n)
            m.height.set(header.height)
            log.info(
                "block appended",
                extra={"height": header.height, "txs": n, "block": header.id.hex()[:16]},
            )
        return headers

    # -- queries --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        led = self.ledger
        return {
            "chain_id": led.genesis.chain_id,
            "genesis_id": led.genesis_id.hex(),
            "height": led.height,
            "head": led.head_id.hex(),
            "n_shards": led.n_shards,
            "mode": self.mode,
            "mempool": {"size": len(self.mempool), "capacity": self.mempool.capacity},
            "peers": [*([self.upstream] if self.upstream else []), *self.follower_urls()],
            "catching_up": self.catching_up(),
            "storage": led.storage_stats().to_json(),
            **({"upstream": self.upstream_status()} if self.upstream else {}),
        }

    def follower_urls(self) -> list[str]:
        return [p.url for p in self.peers.recent()]

    def net_info(self) -> dict[str, Any]:
        """CometBFT's ``/net_info``: this node's listener, its upstream (a follower) and the
        followers that fetched from it within ``PEER_TTL`` seconds."""
        now = time.monotonic()
        peers: list[dict[str, Any]] = []
        if self.upstream:
            up = self.upstream_status()
            peers.append(
                {
                    "url": self.upstream,
                    "role": "upstream",
                    "remote_ip": None,
                    "last_seen_s": None
                    if self.synced_at is None
                    else round(max(0.0, time.time() - self.synced_at), 3),
                    "height": up["height"],
                }
            )
        for p in self.peers.recent(now):
            peers.append(
                {
                    "url": p.url,
                    "role": "follower",
                    "remote_ip": p.remote,
                    "last_seen_s": round(now - p.seen, 3),
                    "height": p.height,
                }
            )
        return {
            "listening": True,
            "listeners": [self.config.url],
            "n_peers": len(peers),
            "peers": peers,
        }

    def catching_up(self) -> bool:
        """CometBFT's flag: a follower that has not yet reached its upstream's last known
        height (or has never heard from it). A proposer or observer is never catching up."""
        if self.upstream is None:
            return False
        return self.upstream_height is None or self.ledger.height < self.upstream_height

    def upstream_status(self) -> dict[str, Any]:
        return {
            "url": self.upstream,
            "reachable": self.synced_at is not None and self.upstream_error is None,
            "height": self.upstream_height,
            "error": self.upstream_error,
        }

    def state(self, account: bytes, height: int | None) -> tuple[int, AccountState]:
        """State at ``height`` (head if None), from the cache when seen before: a state at a
        committed height never changes (blocks are append-only)."""
        h = self.ledger.height if height is None else height
        key = (account, h)
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if found is not None:
            self.metrics.cache.labels("hit").inc()
            return h, found
        self.metrics.cache.labels("miss").inc()
        t0 = time.perf_counter()
        st = self.ledger.state(account, h)
        self.metrics.materialize_seconds.observe(time.perf_counter() - t0)
        self.metrics.materializations.labels("state").inc()
        if self.config.state_cache:
            with self._cache_lock:
                self._cache[key] = st
                while len(self._cache) > self.config.state_cache:
                    self._cache.popitem(last=False)
        return h, st

    def prove(self, account: bytes, height: int | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        answer = prove_state(self.ledger, account, height)
        self.metrics.materialize_seconds.observe(time.perf_counter() - t0)
        self.metrics.materializations.labels("proven_state").inc()
        self.metrics.slice_size.observe(len(answer["proof"]["txs"]))
        return answer

    def prove_slice(self, account: bytes, height: int | None) -> dict[str, Any]:
        answer = prove_slice(self.ledger, account, height)
        self.metrics.slice_size.observe(len(answer["positions"]))
        return answer

    def slice(self, account: bytes, height: int | None) -> tuple[int, list[tuple[int, int, int]]]:
        h = self.ledger.height if height is None else height
        positions = self.ledger.slice(account, h)
        self.metrics.slice_size.observe(len(positions))
        return h, positions

    def receipt(self, tx_id: bytes) -> Any:
        self.metrics.materializations.labels("receipt").inc()
        return self.ledger.receipt(tx_id)
