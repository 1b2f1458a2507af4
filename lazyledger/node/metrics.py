"""Prometheus metrics of one node (its own registry, so several nodes can share a process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from lazyledger.store import StorageStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
SLICE_BUCKETS = (0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)


class Metrics:
    """Counters and histograms the node updates; :meth:`render` is the /metrics body."""

    def __init__(self, storage: Callable[[], StorageStats]) -> None:
        r = self.registry = CollectorRegistry()
        self._storage = storage
        self.requests = Histogram(
            "lazyledger_http_request_seconds",
            "HTTP request latency by route and status class",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.materializations = Counter(
            "lazyledger_materializations_total",
            "States and receipts materialised, by kind",
            ["kind"],
            registry=r,
        )
        self.materialize_seconds = Histogram(
            "lazyledger_materialize_seconds",
            "Time to materialise a state (replay of its slice)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.slice_size = Histogram(
            "lazyledger_slice_transactions",
            "Transactions in the slices served (/slice and proven /state)",
            buckets=SLICE_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "lazyledger_state_cache_total",
            "State cache lookups by result (hit or miss)",
            ["result"],
            registry=r,
        )
        self.txs = Counter(
            "lazyledger_transactions_total",
            "Transactions submitted, by outcome",
            ["outcome"],
            registry=r,
        )
        self.blocks = Counter(
            "lazyledger_blocks_appended_total", "Blocks appended (produced or synced)", registry=r
        )
        self.block_txs = Counter(
            "lazyledger_block_transactions_total", "Transactions in appended blocks", registry=r
        )
        self.append_seconds = Histogram(
            "lazyledger_append_seconds",
            "Time to validate and store one block",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.height = Gauge("lazyledger_height", "Height of the head block", registry=r)
        self.mempool = Gauge("lazyledger_mempool_transactions", "Pending transactions", registry=r)
        self.map_used = Gauge(
            "lazyledger_lmdb_used_bytes", "Bytes used in each LMDB environment", ["env"], registry=r
        )
        self.map_size = Gauge(
            "lazyledger_lmdb_map_bytes", "Map size of each LMDB environment", ["env"], registry=r
        )
        self.free = Gauge(
            "lazyledger_lmdb_free_bytes",
            "Free pages (LMDB's freelist, reused before the file grows) of each environment",
            ["env"],
            registry=r,
        )
        self.table_bytes = Gauge(
            "lazyledger_lmdb_table_bytes",
            "Pages (bytes) held by each table of each LMDB environment",
            ["env", "table"],
            registry=r,
        )
        self.table_entries = Gauge(
            "lazyledger_lmdb_table_entries",
            "Entries in each table of each LMDB environment",
            ["env", "table"],
            registry=r,
        )

    def render(self) -> bytes:
        for env in self._storage().envs:
            self.map_used.labels(env.path).set(env.used_bytes)
            self.map_size.labels(env.path).set(env.map_size)
            self.free.labels(env.path).set(env.free_bytes)
            for t in env.tables:
                self.table_bytes.labels(env.path, t.name).set(t.bytes)
                self.table_entries.labels(env.path, t.name).set(t.entries)
        return bytes(generate_latest(self.registry))
