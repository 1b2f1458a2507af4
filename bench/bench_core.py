"""Issue 2's first benchmark: ingestion with and without parallel signature checks, Numba vs
pure-Python replay, and lazy vs eager on a clusters chain growing 10x with the slice fixed.

    python bench/bench_core.py [--quick] [--out DIR]

A thin wrapper over ``lazyledger bench --scenario ingestion --scenario replay
--scenario chain_length --scenario slice_fraction``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lazyledger.cli import main

CORE = ("ingestion", "replay", "chain_length", "slice_fraction")

if __name__ == "__main__":
    picks = [a for name in CORE for a in ("--scenario", name)]
    raise SystemExit(main(["bench", *picks, *sys.argv[1:]]))
