"""Node load benchmark (a proposer process under HTTP load on loopback).

A launcher for ``python -m lazyledger.bench.node``: the code lives in the package, so
``lazyledger bench`` runs it from an install too.

    python bench/bench_node.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lazyledger.bench.node import main

if __name__ == "__main__":
    raise SystemExit(main())
