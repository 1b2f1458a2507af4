"""Storage (measurement 5): bytes per transaction on disk, by table, on the uniform and the
Ethereum-like workloads, against the canonical transaction bytes (target: at most 2x)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from lazyledger.bench import chains, measure
from lazyledger.bench.model import Context, Params, Result, Scenario, Target
from lazyledger.bench.plotting import number
from lazyledger.bench.timing import progress
from lazyledger.ledger import Ledger
from lazyledger.model import Genesis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STORAGE_TABLES = ("bodies", "rows", "headers", "hosted", "jobs", "info", "checkpoints")
DISK_TARGET = 2.0
"""Disk bytes in use at most this multiple of the canonical transaction bytes."""
TARGETS = tuple(
    Target(
        f"{wl}_disk_over_canonical",
        "<=",
        DISK_TARGET,
        f"storage, {wl} workload: disk bytes / canonical bytes",
        also=(f"{wl}_disk_bytes_per_tx",),
    )
    for wl in ("uniform", "ethereum")
)


def _no_zstd_disk(ctx: Context, genesis: Genesis, blocks: list[bytes]) -> int:
    """LMDB bytes in use after appending ``blocks`` to a ledger whose store compresses
    nothing (an instance patch for this measurement: the store has no switch)."""
    led = Ledger.create(ctx.path("nozstd"), genesis)
    try:
        led.store.compress = bytes  # type: ignore[method-assign,assignment]
        for raw in progress(blocks, "ingest (zstd off)", len(blocks), ctx.on):
            led.append(raw)
        return measure.lmdb_bytes(led)[0]
    finally:
        led.close()


def _storage_of(r: Result, prefix: str, led: Ledger, path: Path) -> None:
    """Put ``led``'s bytes on disk per transaction, split by table (pages), beside the
    canonical bytes, the payload (key+value) and LMDB's page overhead; close ``led``, reopen it
    and time the index build."""
    try:
        n, canonical = measure.canonical_bytes(led)
        stats = led.storage_stats()
        payload = measure.table_bytes(led)
        accounts = [tx.sender for tx in led.section(led.height, 0)] or [led.genesis_id]
    finally:
        led.close()
    used = stats.used_bytes
    pages = stats.table_bytes()
    stored = sum(v for k, v in payload.items() if not k.endswith("_raw"))
    r.put(f"{prefix}_txs", n, "txs")
    r.put(f"{prefix}_canonical_bytes_per_tx", canonical / n, "B/tx")
    r.put(f"{prefix}_disk_bytes_per_tx", used / n, "B/tx")
    r.put(f"{prefix}_disk_over_canonical", used / canonical, "x")
    for name in STORAGE_TABLES:
        r.put(f"{prefix}_{name}_bytes_per_tx", pages.get(name, 0) / n, "B/tx")
    r.put(f"{prefix}_free_bytes_per_tx", stats.free_bytes / n, "B/tx")
    r.put(f"{prefix}_payload_bytes_per_tx", stored / n, "B/tx")
    for name in ("bodies", "rows"):
        r.put(f"{prefix}_{name}_payload_bytes_per_tx", payload.get(name, 0) / n, "B/tx")
        r.put(f"{prefix}_{name}_raw_bytes_per_tx", payload.get(f"{name}_raw", 0) / n, "B/tx")
    r.put(f"{prefix}_lmdb_pages_over_payload", used / stored, "x")
    t0 = time.perf_counter()
    with Ledger.open(path) as again:
        again.nonce(accounts[0])  # the first lookup builds the in-memory index
        r.put(f"{prefix}_open_index_s", time.perf_counter() - t0, "s")


def run(ctx: Context, p: Params) -> Result:
    """Bytes per transaction on disk, by table, on the uniform and the Ethereum-like
    workloads, against the canonical transaction bytes (target: at most 2x)."""
    r = Result("storage", "Storage bytes per transaction (uniform and Ethereum-like)", p)
    genesis, blocks = chains.uniform_blocks(ctx, p)
    n = p["blocks"] * p["per_block"]
    path = ctx.path("storage")
    led, _ = measure.ingest(path, genesis, blocks, 2, on=ctx.on, desc="ingest")
    _storage_of(r, "uniform", led, path)
    off = _no_zstd_disk(ctx, genesis, blocks)
    r.put("uniform_disk_bytes_per_tx_zstd_off", off / n, "B/tx")
    eth_path = ctx.path("storage-eth")
    chain = chains.ethereum_chain(
        eth_path, p["eth_txs"], seed=ctx.settings.seed, on=ctx.on, desc="ethereum-like chain"
    )
    _storage_of(r, "ethereum", chain.ledger, eth_path)
    r.put("target_met", all(t.met_by(r.metrics) for t in TARGETS))
    r.notes.append(
        f"uniform: {p['accounts']} accounts, {p['shards']} shards, {p['blocks']} blocks of "
        f"{p['per_block']} transfers; ethereum-like: workloads.EthereumLike(seed), "
        f"{p['eth_txs']} transfers, 4 shards, its own block sizes (mean 15). disk = LMDB pages "
        "in use (Ledger.storage_stats: last_pgno + 1) over every environment; per table = its "
        "B-tree pages (txn.stat); free = LMDB's freelist pages; payload = key+value bytes; "
        "*_raw = decompressed section sizes; zstd off = the uniform blocks appended to a "
        "second ledger whose Store.compress is the identity (benchmark-only patch). "
        "open_index_s: Ledger.open plus the first nonce lookup, which builds the in-memory "
        "index (rows, links, dense ids, senders, tx id prefixes) from the section records."
    )
    return r


def plot(r: Result) -> Figure:
    """Bytes per transaction by table, uniform beside Ethereum-like."""
    import matplotlib.pyplot as plt

    m = r.metrics
    parts = ["bodies", "rows", "headers", "free"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, wl in enumerate(("uniform", "ethereum")):
        ax.bar(
            [x + 0.4 * k for x in range(len(parts))],
            [number(m[f"{wl}_{p}_bytes_per_tx"]) for p in parts],
            width=0.4,
            label=f"{wl} ({number(m[f'{wl}_disk_over_canonical']):.2f}x canonical)",
        )
    ax.set_xticks([x + 0.2 for x in range(len(parts))], parts)
    ax.set(ylabel="bytes / tx (LMDB pages)", title="storage by table")
    ax.legend(fontsize=8)
    return fig


SCENARIO = Scenario(
    "storage",
    "bytes per transaction on disk by table, uniform and Ethereum-like (measurement 5)",
    run,
    {
        "tiny": {"shards": 4, "accounts": 100, "blocks": 4, "per_block": 100, "eth_txs": 400},
        "quick": {
            "shards": 4,
            "accounts": 10_000,
            "blocks": 100,
            "per_block": 500,
            "eth_txs": 50_000,
        },
        "full": {
            "shards": 4,
            "accounts": 100_000,
            "blocks": 2000,
            "per_block": 500,
            "eth_txs": 1_000_000,
        },
    },
    (
        "uniform_disk_bytes_per_tx",
        "uniform_disk_over_canonical",
        "uniform_bodies_bytes_per_tx",
        "uniform_rows_bytes_per_tx",
        "uniform_lmdb_pages_over_payload",
        "ethereum_disk_bytes_per_tx",
        "ethereum_disk_over_canonical",
        "ethereum_bodies_bytes_per_tx",
        "ethereum_rows_bytes_per_tx",
        "ethereum_headers_bytes_per_tx",
        "ethereum_lmdb_pages_over_payload",
        "target_met",
    ),
    targets=TARGETS,
    plot=plot,
)
