"""The ``lazyledger`` command line: ``demo`` (the default), plus the ``node`` and ``bench``
subcommands contributed by :mod:`lazyledger.node` and :mod:`lazyledger.bench`."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SUBCOMMANDS = {"node": "lazyledger.node.cli", "bench": "lazyledger.bench.cli"}


def _demo(args: argparse.Namespace) -> int:
    from lazyledger.ledger import Ledger
    from lazyledger.workloads import Workload

    path = Path(args.datadir)
    if path.exists():
        if not args.fresh:
            print(f"{path} exists; pass --fresh to replace it", file=sys.stderr)
            return 2
        shutil.rmtree(path)
    wl = Workload(
        "clusters",
        n_accounts=args.accounts,
        n_shards=args.shards,
        seed=args.seed,
        cluster_size=8,
        bridge=0.0005,
    )
    print(f"creating a {args.shards}-shard ledger at {path}")
    with Ledger.create(path, wl.genesis()) as led:
        t0 = time.perf_counter()
        n = 0
        for block in wl.blocks(led, args.blocks, args.txs):
            n += sum(block.header.shard_counts)
        t_ingest = time.perf_counter() - t0
        print(
            f"signed, validated and stored {args.blocks} blocks / {n} transactions "
            f"in {t_ingest:.2f} s (signing included; nothing was executed)"
        )
        led.state(wl.keys[0].account)  # warm the replay kernel (Numba compiles once)
        t0 = time.perf_counter()
        everyone = led.replay_all()
        t_eager = time.perf_counter() - t0
        print(f"eager replay_all of {len(everyone)} accounts: {t_eager * 1e3:.1f} ms")
        print(f"{'account':18} {'slice':>6} {'share':>7} {'ms':>7}  nonce  balances")
        for kp in wl.keys[1 : 1 + args.show]:
            positions = led.slice(kp.account, use_checkpoints=False)
            t0 = time.perf_counter()
            st = led.state(kp.account)
            ms = (time.perf_counter() - t0) * 1e3
            assert st == everyone[kp.account]
            print(
                f"{kp.account.hex()[:16]}.. {len(positions):6d} {len(positions) / n:7.2%} "
                f"{ms:7.2f}  {st.nonce:5d}  {st.balances}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lazyledger", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="build a small local chain and materialise a few accounts")
    demo.add_argument("--datadir", default="lazyledger-data")
    demo.add_argument("--fresh", action="store_true", help="replace an existing datadir")
    demo.add_argument("--shards", type=int, default=4)
    demo.add_argument("--accounts", type=int, default=400)
    demo.add_argument("--blocks", type=int, default=40)
    demo.add_argument("--txs", type=int, default=250, help="transactions per block")
    demo.add_argument("--show", type=int, default=6, help="accounts to materialise")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)
    for module in SUBCOMMANDS.values():
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as e:
            if e.name is None or not module.startswith(e.name):
                raise
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo", *argv]
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
