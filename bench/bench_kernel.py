"""The replay kernel alone, on 4M synthetic rows (transfers, mints, swaps, transfer_ifs over
100k balance slots): rows per second, best of 7, and a checksum of the result.

    python bench/bench_kernel.py                        # this checkout
    PYTHONPATH=/path/to/other/checkout python bench/bench_kernel.py   # another, side by side"""

from __future__ import annotations

import time

import numpy as np

import lazyledger
from lazyledger.materialize import kernel


def main(n: int = 4_000_000, slots: int = 100_000) -> None:
    rng = np.random.default_rng(1)
    op = rng.choice(np.array([1, 1, 1, 1, 2, 3, 8], np.uint8), n)
    cols = [rng.integers(0, slots, n) for _ in range(4)]
    amount = rng.integers(1, 1000, n)
    min_out = np.zeros(n, np.int64)
    start = np.full(slots, 10**9, np.int64)
    status = np.zeros(n, np.uint8)
    kernel.replay(
        op[:8], *[c[:8] for c in cols], amount[:8], min_out[:8], start.copy(), status[:8], 0
    )
    times = []
    for _ in range(7):
        bal = start.copy()
        t = time.perf_counter()
        kernel.replay(op, *cols, amount, min_out, bal, status, 0)
        times.append(time.perf_counter() - t)
    best = min(times)
    where = lazyledger.__file__.rsplit("/lazyledger/", 1)[0]
    print(
        f"{where}: kernel {best * 1e3:.1f} ms, {n / best / 1e6:.1f} M rows/s;"
        f" checksum {int(bal.sum() % 1_000_003)}, statuses {np.bincount(status).tolist()}"
    )


if __name__ == "__main__":
    main()
