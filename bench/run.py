"""Run the benchmark suite without installing the console script:

    python bench/run.py [--quick] [--scenario NAME ...] [--out DIR] [--seed N]

Same as ``lazyledger bench ...``; see ``lazyledger bench --help``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lazyledger.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
