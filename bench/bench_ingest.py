"""Where ingestion's time goes: pre-signed Ethereum-like blocks of ~15 and ~200 transactions
appended one ``Ledger.append`` (one durable commit) each, with the wall time, the process's
user and system CPU per block, and the CPU cores that amounts to (signature checks run on a
pool thread for large blocks; the shard commits on I/O threads).

    python bench/bench_ingest.py [N_TXS]

N_TXS (default 16000) per block size; the source chains are built (signed) before the clock
runs, in a scratch folder."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path


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
    with Ledger.create(tmp / f"dst-{mean_block}", genesis) as led:
        for b in blocks[:20]:  # warm-up
            led.append(b)
        timed = blocks[20:]
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for b in timed:
            led.append(b)
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        txs = sum(sum(led.header(h).shard_counts) for h in range(21, led.height + 1))
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    per = 1e3 / len(timed)
    print(
        f"~{mean_block}-tx blocks: {txs / wall:,.0f} tx/s; per block {wall * per:.2f} ms wall,"
        f" {user * per:.2f} ms user CPU, {system * per:.2f} ms system CPU"
        f" ({(user + system) / wall:.2f} cores busy)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16_000
    with tempfile.TemporaryDirectory() as tmp:
        for mean_block in (15, 200):
            measure(Path(tmp), n, mean_block)


if __name__ == "__main__":
    main()
