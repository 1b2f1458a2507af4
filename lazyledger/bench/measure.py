"""Measurements around the public Ledger API: query latencies, eager replay, ingestion from
block bytes, storage accounting and cProfile summaries."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lazyledger.bench.model import Value
from lazyledger.bench.timing import percentiles, progress, sample
from lazyledger.ledger import Ledger
from lazyledger.materialize.replay import replay_rows
from lazyledger.materialize.rows import ROW_DTYPE
from lazyledger.model import Genesis

NEVER = 1 << 62
"""A ``checkpoint_min_rows`` that no slice reaches: queries write no checkpoint (stay cold)."""


def warm_kernel() -> float:
    """Load (or compile) the Numba replay kernel; seconds taken."""
    rows = np.zeros(2, dtype=ROW_DTYPE)
    rows["op"] = 1
    rows["amount"] = 1
    rows["acc0"][0] = np.void(b"\x01" * 32)
    rows["acc1"][0] = np.void(b"\x02" * 32)
    rows["acc0"][1] = np.void(b"\x02" * 32)
    rows["acc1"][1] = np.void(b"\x01" * 32)
    t0 = time.perf_counter()
    replay_rows(rows, {b"\x01" * 32: {0: 5}})
    return time.perf_counter() - t0


def agree(led: Ledger, accounts: Sequence[bytes]) -> bool:
    """Whether lazy ``state`` equals the eager ``replay_all`` for every one of ``accounts``."""
    everyone = led.replay_all()
    return all(led.state(a) == everyone[a] for a in accounts)


def checkpoint_count(led: Ledger) -> int:
    """Checkpoints the ledger holds."""
    return led.checkpoint_count()


def cold_latencies(led: Ledger, accounts: Sequence[bytes], reps: int, on: bool) -> list[float]:
    """Seconds per ``state`` query with no checkpoint to cut the slice (none exist, none are
    written), cycling through ``accounts``."""
    if checkpoint_count(led):
        raise RuntimeError("cold queries need a ledger without checkpoints")
    saved, led.checkpoint_min_rows = led.checkpoint_min_rows, NEVER
    try:
        out: list[float] = []
        for k in progress(range(reps), "lazy cold", reps, on):
            a = accounts[k % len(accounts)]
            t0 = time.perf_counter()
            led.state(a)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        led.checkpoint_min_rows = saved


def warm_latencies(led: Ledger, accounts: Sequence[bytes], reps: int, on: bool) -> list[float]:
    """Seconds per repeated ``state`` query after a first (untimed) one wrote a checkpoint at
    the head (default ``checkpoint_min_rows``)."""
    for a in accounts:
        led.state(a)
    out: list[float] = []
    for k in progress(range(reps), "lazy warm", reps, on):
        a = accounts[k % len(accounts)]
        t0 = time.perf_counter()
        led.state(a)
        out.append(time.perf_counter() - t0)
    return out


def slice_latencies(led: Ledger, accounts: Sequence[bytes], reps: int) -> list[float]:
    """Seconds per ``slice`` computation (no checkpoints), cycling through ``accounts``."""
    out: list[float] = []
    for k in range(reps):
        a = accounts[k % len(accounts)]
        t0 = time.perf_counter()
        led.slice(a, use_checkpoints=False)
        out.append(time.perf_counter() - t0)
    return out


def eager(led: Ledger, reps: int) -> dict[str, float]:
    """Percentiles (ms) of ``replay_all`` at the head."""
    return percentiles(sample(led.replay_all, reps))


def ingest(
    path: Path, genesis: Genesis, blocks: Sequence[bytes], workers: int, *, on: bool, desc: str
) -> tuple[Ledger, list[float]]:
    """Append pre-signed ``blocks`` (bytes) to a fresh ledger; seconds per block. The caller
    closes the returned ledger."""
    led = Ledger.create(path, genesis, workers=workers)
    per: list[float] = []
    for raw in progress(blocks, desc, len(blocks), on):
        t0 = time.perf_counter()
        led.append(raw)
        per.append(time.perf_counter() - t0)
    return led, per


def ingest_batched(
    path: Path, genesis: Genesis, blocks: Sequence[bytes], batch: int, *, on: bool, desc: str
) -> float:
    """Seconds to append pre-signed ``blocks`` with group commits of ``batch`` blocks
    (``Ledger.append_many``, 2 signature workers)."""
    with Ledger.create(path, genesis, workers=2) as led:
        t0 = time.perf_counter()
        chunks = [blocks[k : k + batch] for k in range(0, len(blocks), batch)]
        for chunk in progress(chunks, desc, len(chunks), on):
            led.append_many(chunk)
        return time.perf_counter() - t0


def lmdb_bytes(led: Ledger) -> tuple[int, int]:
    """(pages in use, bytes allocated on disk) over every LMDB environment of ``led``."""
    used = sum(u for u, _ in led.store.map_use().values())
    allocated = 0
    for env in led.store.envs:
        st = os.stat(Path(env.path) / "data.mdb")
        allocated += st.st_blocks * 512
    return used, allocated


def table_bytes(led: Ledger) -> dict[str, int]:
    """Key+value bytes per table (summed over environments), and the raw (decompressed) size
    of bodies and rows."""
    out: dict[str, int] = {}
    store = led.store
    for env in store.envs:
        with env.read() as txn:
            for name, db in env.db.items():
                for key, value in txn.cursor(db):
                    out[name] = out.get(name, 0) + len(key) + len(value)
                    if env.kind == "shard" and name in ("bodies", "rows"):
                        out[name + "_raw"] = out.get(name + "_raw", 0) + len(key)
                        out[name + "_raw"] += len(store.decompress(value))
    return out


def canonical_bytes(led: Ledger) -> tuple[int, int]:
    """(transactions, their canonical bytes) over the whole chain."""
    n = size = 0
    for h in range(1, led.height + 1):
        for s in range(led.n_shards):
            txs = led.section(h, s)
            n += len(txs)
            size += sum(len(tx.raw) for tx in txs)
    return n, size


def profile_top(fn: Callable[[], object], path: Path, n: int = 8) -> list[dict[str, Value]]:
    """Run ``fn`` under cProfile; write the full report to ``path`` and return the ``n``
    functions with the most own time (share of the profiled total)."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(30)
    path.write_text(buf.getvalue())
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    return [
        {
            "function": f"{Path(k[0]).name}:{k[1]}({k[2]})",
            "own_s": round(v[2], 4),
            "share": round(v[2] / total, 3),
        }
        for k, v in top
    ]
