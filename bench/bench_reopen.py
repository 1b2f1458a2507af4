"""The touch commitment after reopening an N-tx Ethereum-like chain (200-tx blocks): built
from the index (``TouchMap.from_columns``, what a ledger does now) against decoding every
block (``touches.build``, what it did before), each in a fresh process.

    python bench/bench_reopen.py 1000000"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import sys, time
from lazyledger import Ledger, touches
path, how = sys.argv[1], sys.argv[2]
with Ledger.open(path) as led:
    h = led.height
    t0 = time.perf_counter()
    if how == "index":
        m = led.materializer.touches(h)
    else:
        m = touches.build((x, led.ingestor.sections(x)) for x in range(1, h + 1))
    dt = time.perf_counter() - t0
    assert m.root == led.header(h).touch_root
    print(dt)
"""


def main(n: int) -> None:
    from lazyledger.bench import chains
    from lazyledger.workloads import EthereumShape

    with tempfile.TemporaryDirectory() as tmp:
        src = chains.ethereum_chain(
            Path(tmp) / "chain", n, seed=0, shape=EthereumShape(mean_block=200), on=False
        )
        path = str(src.ledger.store.path)
        src.ledger.close()
        out: dict[str, object] = {"txs": n}
        for how in ("index", "blocks", "index", "blocks"):
            run = [sys.executable, "-c", CHILD, path, how]
            t = float(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
            out.setdefault(f"{how}_s", []).append(round(t, 2))  # type: ignore[union-attr]
        out["load"] = Path("/proc/loadavg").read_text().split()[0]
        out["when"] = time.strftime("%Y-%m-%d %H:%M")
        print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
