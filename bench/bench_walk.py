"""The slice walk's share of a cold ``state`` on an N-tx Ethereum-like chain (200-tx blocks,
no checkpoints), measured as ``lazyledger bench --scenario realistic`` does, at the accounts
whose slices sit at the p50 and p90 of 200 random accounts: with the backward pass (what a
ledger does) and with the link-chasing walk alone, side by side in one process.

    python bench/bench_walk.py 1000000 [CHAIN_DIR]

CHAIN_DIR keeps the chain between runs (built there if missing)."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def best(f: Callable[[], Any], reps: int = 5) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return min(out)


def measure(path: Path, n: int) -> None:
    from lazyledger import Ledger
    from lazyledger.bench import chains
    from lazyledger.bench.measure import NEVER
    from lazyledger.materialize.index import NO_CUTS, SCAN_MIN_ROWS
    from lazyledger.shards import end_of
    from lazyledger.workloads import EthereumShape

    if not (path / "meta").exists():
        built = chains.ethereum_chain(
            path, n, seed=0, shape=EthereumShape(mean_block=200), on=False
        )
        built.ledger.close()
    with Ledger.open(path, readonly=True) as led:
        led.checkpoint_min_rows = NEVER
        cols, _ = led._index()
        names = led.materializer.accounts.names
        accounts = [names[i].tobytes() for i in range(len(led.materializer.accounts))]
        led.replay_all()
        eager = best(led.replay_all, 3)
        print(f"{cols.n} rows; replay_all {eager * 1e3:.1f} ms ({cols.n / eager / 1e6:.2f} M tx/s)")
        rng = np.random.default_rng(0)
        picked = [accounts[i] for i in rng.integers(0, len(accounts), 200).tolist()]
        end = end_of(led.height)
        frac = np.array([len(led._slice({a: end})) / cols.n for a in picked])
        print("slice p10/p50/p90", [round(float(np.percentile(frac, q)), 4) for q in (10, 50, 90)])
        for q in (50, 90):
            a = picked[int(np.argmin(np.abs(frac - np.percentile(frac, q))))]
            k = led._account_id(a)
            assert k is not None
            f = len(led._slice({a: end})) / cols.n
            start = cols.start(k, cols.n)
            big = max(led.dense_min_rows, int(led.dense_fraction * cols.n))
            limit = big if cols.n > big else None
            for mode in ("backward pass", "walk alone"):
                cols.scan_min_rows = SCAN_MIN_ROWS if mode == "backward pass" else 1 << 62
                cold = best(lambda a=a: led.state(a))
                walk = best(lambda k=k, s=start, c=limit: cols.closure([(k, s, end)], NO_CUTS, c))
                print(
                    f"p{q} slice {f:.3f} [{mode}]: cold {cold * 1e3:.2f} ms, cold/ideal"
                    f" {cold / (f * eager):.2f}, walk {walk * 1e3:.2f} ms, share {walk / cold:.2f}"
                )
            cols.scan_min_rows = SCAN_MIN_ROWS


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if len(sys.argv) > 2:
        measure(Path(sys.argv[2]), n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        measure(Path(tmp) / "chain", n)


if __name__ == "__main__":
    main()
