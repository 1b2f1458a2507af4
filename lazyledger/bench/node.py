"""Load benchmark of the reference node: a proposer in its own process on loopback, and this
process submitting signed transfers as fast as the node accepts them for a fixed duration.

Reports sustained accepted tx/s, included tx/s, the p50/p99 latency of ``/broadcast_tx_sync``
and of inclusion (submission to the block that holds it, as seen by a watcher), and checks that
every accepted transaction ends up in a block.

    python -m lazyledger.bench.node --duration 10 --concurrency 32 --json bench/results/node.json

(``bench/bench_node.py`` in a clone is the same.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import lazyledger as ll
from lazyledger.node.config import dev_keys, write_genesis, write_key


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _load(url: str, keys: list[ll.Keypair], args: argparse.Namespace) -> dict[str, Any]:
    submitted: dict[bytes, float] = {}
    included: dict[bytes, float] = {}
    latencies: list[float] = []
    rejected = {"429": 0, "other": 0}
    stop_at = time.perf_counter() + args.duration
    limits = httpx.Limits(max_connections=args.concurrency + 4)

    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:

        async def worker(mine: list[ll.Keypair]) -> None:
            nonces = dict.fromkeys((k.account for k in mine), 0)
            i = 0
            while time.perf_counter() < stop_at:
                kp = mine[i % len(mine)]
                i += 1
                to = keys[(i * 7 + 1) % len(keys)].account
                tx = ll.transfer(
                    kp, nonce=nonces[kp.account], to=to, asset=0, amount=1, chain_id="bench"
                )
                while True:
                    t0 = time.perf_counter()
                    r = await http.post("/broadcast_tx_sync", json={"tx": tx.raw.hex()})
                    t1 = time.perf_counter()
                    if r.status_code == 200:
                        latencies.append(t1 - t0)
                        submitted[tx.id] = t0
                        nonces[kp.account] += 1
                        break
                    if r.status_code == 429:
                        rejected["429"] += 1
                        await asyncio.sleep(0.01)
                        if time.perf_counter() >= stop_at:
                            return
                        continue
                    rejected["other"] += 1
                    return

        async def batch_worker(mine: list[ll.Keypair]) -> None:
            """``args.batch`` distinct senders per /broadcast_txs request (no nonce depends on
            another in the same request); refused ones are resent next round."""
            nonces = dict.fromkeys((k.account for k in mine), 0)
            size = min(args.batch, len(mine))
            i = 0
            while time.perf_counter() < stop_at:
                senders = [mine[(i + k) % len(mine)] for k in range(size)]
                i += size
                txs = [
                    ll.transfer(
                        kp,
                        nonce=nonces[kp.account],
                        to=keys[(i * 7 + k) % len(keys)].account,
                        asset=0,
                        amount=1,
                        chain_id="bench",
                    )
                    for k, kp in enumerate(senders)
                ]
                t0 = time.perf_counter()
                r = await http.post("/broadcast_txs", json={"txs": [t.raw.hex() for t in txs]})
                t1 = time.perf_counter()
                if r.status_code != 200:
                    rejected["other"] += len(txs)
                    return
                latencies.append(t1 - t0)
                for kp, tx, res in zip(senders, txs, r.json()["results"], strict=True):
                    if res["code"] == 0:
                        submitted[tx.id] = t0
                        nonces[kp.account] += 1
                    elif res["code"] == 429:
                        rejected["429"] += 1
                    else:
                        rejected["other"] += 1
                if rejected["429"]:
                    await asyncio.sleep(0.005)

        async def watcher(until: asyncio.Event) -> None:
            seen = 0
            while True:
                head = int((await http.get("/status")).json()["height"])
                for h in range(seen + 1, head + 1):
                    r = await http.get("/block", params={"height": h, "encoding": "raw"})
                    now = time.perf_counter()
                    for sec in ll.Block.from_bytes(r.content).sections:
                        for tx in sec:
                            included[tx.id] = now
                seen = head
                if until.is_set() and submitted.keys() <= included.keys():
                    return
                await asyncio.sleep(0.02)

        done = asyncio.Event()
        watch = asyncio.create_task(watcher(done))
        per = max(1, len(keys) // args.concurrency)
        t_start = time.perf_counter()
        run = batch_worker if args.batch > 1 else worker
        await asyncio.gather(*(run(keys[w * per : (w + 1) * per]) for w in range(args.concurrency)))
        t_load = time.perf_counter() - t_start
        done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch, timeout=120)
        t_all = max(included.values(), default=t_start) - t_start
    incl = [included[i] - t for i, t in submitted.items() if i in included]
    return {
        "accepted": len(submitted),
        "included": sum(1 for i in submitted if i in included),
        "all_included": submitted.keys() <= included.keys(),
        "rejected_429": rejected["429"],
        "rejected_other": rejected["other"],
        "load_seconds": round(t_load, 3),
        "accepted_tx_per_s": round(len(submitted) / t_load, 1),
        "included_tx_per_s": round(len(incl) / t_all, 1) if t_all > 0 else None,
        "submit_latency_ms": {
            "p50": round(_pct(latencies, 0.50) * 1e3, 2),
            "p99": round(_pct(latencies, 0.99) * 1e3, 2),
        },
        "inclusion_latency_ms": {
            "p50": round(_pct(incl, 0.50) * 1e3, 1),
            "p99": round(_pct(incl, 0.99) * 1e3, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lazyledger.bench.node",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    p.add_argument(
        "--batch", type=int, default=1, help="transactions per request (>1: /broadcast_txs)"
    )
    p.add_argument("--concurrency", type=int, default=32, help="concurrent submitters")
    p.add_argument("--accounts", type=int, default=256, help="funded sender accounts")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--block-interval", type=float, default=0.25)
    p.add_argument("--max-block-txs", type=int, default=5000)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)

    keys = dev_keys(args.accounts)
    proposer = ll.Keypair.from_seed(b"\xb0" * 32)
    genesis = ll.Genesis(
        chain_id="bench",
        n_shards=args.shards,
        authorities=[proposer.public_key],
        assets={0: proposer.account},
        balances={k.account: {0: 10**12} for k in keys},
    )
    with tempfile.TemporaryDirectory(prefix="lazyledger-bench-node-") as tmp:
        datadir = Path(tmp) / "node"
        datadir.mkdir()
        write_genesis(Path(tmp) / "genesis.toml", genesis)
        write_key(datadir / "node_key", proposer)
        port = _port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "lazyledger.node", "run", "--datadir", str(datadir)]
        cmd += ["--genesis", str(Path(tmp) / "genesis.toml"), "--port", str(port)]
        cmd += ["--block-interval", str(args.block_interval)]
        cmd += ["--max-block-txs", str(args.max_block_txs), "--log-level", "warning"]
        node = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            result = asyncio.run(_load(url, keys, args))
        finally:
            node.send_signal(signal.SIGTERM)
            rc = node.wait(timeout=60)
    result.update(
        {
            "node_exit_status": rc,
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        }
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0 if result["all_included"] and rc == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
