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
    p.add_argument("--part", choices=["all", "ingestion", "proofs"], default="all")
    p.add_argument("--txs", type=int, help="transactions per ingestion run")
    p.add_argument("--accounts", type=int, help="accounts of the proof-size map")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    n_txs = args.txs or (3_000 if args.quick else 30_000)
    accounts = args.accounts or (50_000 if args.quick else 1_000_000)
    doc: dict[str, object] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as work:
        if args.part in ("all", "ingestion"):
            doc["ingestion"] = [
                ingestion_overhead(Path(work), n_txs, block, rounds=3) for block in (15, 200)
            ]
        if args.part in ("all", "proofs"):
            doc["proofs"] = proof_sizes(accounts, 2 * accounts)
    doc["load_after"] = os.getloadavg()
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
