"""Where ingestion's time goes: pre-signed Ethereum-like blocks of ~15 and ~200 transactions
appended with one durable commit each, through ``Ledger.append_stream`` (the next block
validated while earlier ones commit) and through one ``Ledger.append`` per block, side by side
on fresh ledgers: the wall time, the process's user and system CPU per block, and the CPU cores
that amounts to (signature checks run on the validator's pool, shard commits on writer threads,
the stream's metadata commits on a committer thread).

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
    """CPU seconds (user + system) of this process's threads, by thread name without its
    number (Linux: read from /proc; empty elsewhere)."""
    names = {t.native_id: t.name.rstrip("0123456789_") for t in threading.enumerate()}
    out: collections.Counter[str] = collections.Counter()
    for task in Path("/proc/self/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # (a thread that just ended)
            continue
        name = names.get(int(task.name), "other")
        out[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


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
    hashtree.warm()  # (loaded once per process, as in a running node)
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
            split = ", ".join(f"{name} {cpu * per:.2f}" for name, cpu in threads.most_common())
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
