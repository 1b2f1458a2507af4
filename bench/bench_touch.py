"""Issue 10's touch-commitment costs: ingestion with and without the commitment (one run,
interleaved), rebuilding the map on open, and prefix-proof sizes over 10**6 accounts.

    python bench/bench_touch.py [--quick] [--out FILE]

Prints one JSON document (see ``lazyledger/bench/touch.py``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lazyledger.bench.touch import ingestion_overhead, proof_sizes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    n_txs, rounds = (3_000, 3) if args.quick else (30_000, 3)
    accounts = 50_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as work:
        doc = {
            "load": os.getloadavg(),
            "ingestion": [
                ingestion_overhead(Path(work), n_txs, block, rounds) for block in (15, 200)
            ],
            "proofs": proof_sizes(accounts, 2 * accounts),
        }
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
