"""DNN claims benchmark (training vs checking a claim, integer vs torch inference).

A launcher for ``python -m lazyledger.bench.dnn``: the code lives in the package, so
``lazyledger bench`` runs it from an install too.

    python bench/bench_dnn.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lazyledger.bench.dnn import main

if __name__ == "__main__":
    raise SystemExit(main())
