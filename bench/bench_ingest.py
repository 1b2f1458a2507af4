"""Where ingestion's time goes: pre-signed Ethereum-like blocks of ~15 and ~200 transactions
appended with one durable commit each, through ``Ledger.append_stream`` (the next block
validated while earlier ones commit) and through one ``Ledger.append`` per block, side by side
on fresh ledgers: the wall time, the process's user and system CPU per block, and the CPU cores
that amounts to (signature checks run on the validator's pool, shard commits on writer threads,
the stream's metadata commits on a committer thread). Beside them, the floor: the CPU per block
of what no validator can skip (decoding, the Ed25519 checks, the touch root), each on this
thread alone with no storage, against the CPU per block the 2 targets leave (cores x the time
per block at the target rate).

    python bench/bench_ingest.py [N_TXS]

N_TXS (default 16000; at least 6000, since 20 blocks of each size warm up first) per block
size; the source chains are built (signed) before the clock runs, in a scratch folder."""

from __future__ import annotations

import collections
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path


def thread_cpu() -> collections.Counter[str]:
    """CPU clock ticks (user + system; ``os.sysconf("SC_CLK_TCK")`` a second) of this
    process's threads, by thread name without its number (Linux: read from /proc; empty
    elsewhere)."""
    names = {t.native_id: t.name.rstrip("0123456789_") for t in threading.enumerate()}
    out: collections.Counter[str] = collections.Counter()
    for task in Path("/proc/self/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # (a thread that just ended)
            continue
        name = names.get(int(task.name), "other")
        out[name] += int(fields[11]) + int(fields[12])
    return out


TARGETS = {15: 10_000, 200: 25_000}
"""Issue 9's ingestion targets, tx/s by mean block size."""


def floor(blocks: list[bytes], mean_block: int) -> None:
    """Print the CPU per block of decoding, the signature checks (libsodium, one call per
    signature) and the touch root, each alone on this thread, beside the target's budget."""
    from lazyledger.crypto import first_bad_signature
    from lazyledger.model import Block
    from lazyledger.touches import TouchMap

    decoded = [Block.from_bytes(b) for b in blocks]
    signed = [
        [(tx.public_key, tx.signature + tx.body) for sec in b.sections for tx in sec]
        + [(b.header.proposer, b.header.signature + b.header.body)]
        for b in decoded
    ]
    touches = TouchMap().stage()
    for b in decoded[:20]:
        touches.add_block(b.header.height, b.sections)
    timed = range(20, len(blocks))
    t0 = time.thread_time()
    for i in timed:
        Block.from_bytes(blocks[i])
    t1 = time.thread_time()
    for i in timed:
        if first_bad_signature(signed[i]) is not None:
            raise SystemExit(f"error: block {i + 1} carries a bad signature")
    t2 = time.thread_time()
    for i in timed:
        touches.add_block(decoded[i].header.height, decoded[i].sections)
    t3 = time.thread_time()
    per, txs = 1e3 / len(timed), sum(len(signed[i]) - 1 for i in timed)
    cores = os.cpu_count() or 1
    budget = cores * 1e3 * txs / len(timed) / TARGETS[mean_block]
    print(
        f"~{mean_block}-tx blocks, floor on one thread (no storage): decode"
        f" {(t1 - t0) * per:.2f} ms, signatures {(t2 - t1) * per:.2f} ms"
        f" ({(t2 - t1) * 1e6 / (txs + len(timed)):.0f} us each), touch root"
        f" {(t3 - t2) * per:.2f} ms: {(t3 - t0) * per:.2f} ms of CPU per block; at"
        f" {TARGETS[mean_block]:,} tx/s a block has {cores} cores x"
        f" {budget / cores:.2f} ms = {budget:.2f} ms"
    )


def measure(tmp: Path, n: int, mean_block: int) -> None:
    from lazyledger import Ledger
    from lazyledger.bench import chains
    from lazyledger.shards import hashtree
    from lazyledger.workloads import EthereumShape

    src = chains.ethereum_chain(
        tmp / f"src-{mean_block}", n, shape=EthereumShape(mean_block=mean_block), on=False
    )
    try:
        blocks = [b.to_bytes() for b in src.ledger.blocks()]
        genesis = src.genesis
    finally:
        src.ledger.close()
    hashtree.wait()  # (loaded once per process, as in a running node)
    floor(blocks, mean_block)
    for mode in ("append_stream", "append"):
        with Ledger.create(tmp / f"dst-{mean_block}-{mode}", genesis) as led:
            for b in blocks[:20]:  # warm-up
                led.append(b)
            timed = blocks[20:]
            c0 = thread_cpu()
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            if mode == "append":
                for b in timed:
                    led.append(b)
            else:
                for _ in led.append_stream(timed):
                    pass
            wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
            threads = thread_cpu() - c0
            txs = sum(sum(led.header(h).shard_counts) for h in range(21, led.height + 1))
        user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        per = 1e3 / len(timed)
        print(
            f"~{mean_block}-tx blocks, {mode}: {txs / wall:,.0f} tx/s; per block"
            f" {wall * per:.2f} ms wall, {user * per:.2f} ms user CPU,"
            f" {system * per:.2f} ms system CPU ({(user + system) / wall:.2f} cores busy)"
        )
        if threads:
            tick = per / os.sysconf("SC_CLK_TCK")
            split = ", ".join(f"{name} {cpu * tick:.2f}" for name, cpu in threads.most_common())
            print(f"    CPU ms per block by thread: {split}")


def main() -> None:
    arg = sys.argv[1] if len(sys.argv) > 1 else "16000"
    if len(sys.argv) > 2 or not arg.isdigit() or int(arg) < 6000:
        sys.exit(f"error: N_TXS must be one whole number of at least 6000 (got {sys.argv[1:]})")
    n = int(arg)
    with tempfile.TemporaryDirectory() as tmp:
        for mean_block in (15, 200):
            measure(Path(tmp), n, mean_block)


if __name__ == "__main__":
    main()
