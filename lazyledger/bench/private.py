"""Private-transaction overhead (issue 5), measured side by side in one run:

1. sealing (ll.private) vs signing a public transfer, and opening with a keyring, per tx;
2. cold materialisation of the same accounts on two chains from one seed, without and with
   private transfers (an insider's keyring opens them all): time per slice transaction;
3. the cost report's estimate vs the measured materialisation time, after calibrating the cost
   model on the public chain (the estimate should be within 2x).

Run: python -m lazyledger.bench.private [--accounts 400 --blocks 40 --txs 250 --share 0.3
--json F] (``bench/bench_private.py`` in a clone is the same)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lazyledger as ll
from lazyledger.workloads import Workload


def per_call(fn: Callable[[], object], n: int) -> float:
    """Mean seconds of one call of ``fn`` over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def chain(root: Path, args: argparse.Namespace, share: float) -> tuple[ll.Ledger, Workload]:
    wl = Workload(
        "clusters",
        n_accounts=args.accounts,
        n_shards=4,
        seed=args.seed,
        cluster_size=10,
        bridge=0.002,
        private_share=share,
    )
    led = ll.Ledger.create(root / f"share-{share}", wl.genesis(), keyring=ll.Keyring(wl.keys))
    for _ in wl.blocks(led, args.blocks, args.txs):
        pass
    led.checkpoint_min_rows = 1 << 62  # cold queries only
    return led, wl


def timed_states(
    led: ll.Ledger, accounts: list[bytes], repeats: int = 3
) -> list[tuple[int, float]]:
    out = []
    for a in accounts:
        n = led.cost(a).slice_txs
        best = min(per_call(partial(led.state, a), 1) for _ in range(repeats))
        out.append((n, best))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lazyledger.bench.private",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--accounts", type=int, default=400)
    p.add_argument("--blocks", type=int, default=40)
    p.add_argument("--txs", type=int, default=250)
    p.add_argument("--share", type=float, default=0.3, help="share of private transfers")
    p.add_argument("--sample", type=int, default=40, help="accounts to materialise")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    a, b = ll.Keypair.from_seed(b"\x01" * 32), ll.Keypair.from_seed(b"\x02" * 32)
    call = ll.Transfer(b.account, 0, 5)
    sealed = ll.private(a, nonce=0, call=call, recipients=[a.public_key, b.public_key])
    g = ll.Genesis("x", 1, [a.public_key], {0: a.account}, {}, {})
    insider = ll.Keyring([b])
    n = 2000
    r: dict[str, float | int | str] = {
        "sign_public_us": per_call(
            lambda: ll.transfer(a, nonce=0, to=b.account, asset=0, amount=5), n
        )
        * 1e6,
        "seal_private_us": per_call(
            lambda: ll.private(a, nonce=0, call=call, recipients=[a.public_key, b.public_key]), n
        )
        * 1e6,
        "open_private_us": per_call(lambda: insider.open(sealed, g), n) * 1e6,
        "public_tx_bytes": len(ll.transfer(a, nonce=0, to=b.account, asset=0, amount=5).to_bytes()),
        "private_tx_bytes": len(sealed.to_bytes()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        public, wl = chain(Path(tmp), args, 0.0)
        mixed, _ = chain(Path(tmp), args, args.share)
        with public, mixed:
            accounts = [k.account for k in wl.keys[: args.sample]]
            public.state(accounts[0])  # compile the kernel outside the timings
            pub = timed_states(public, accounts)
            mix = timed_states(mixed, accounts)
            private_in_slices = sum(mixed.cost(x).private_txs for x in accounts)
            model = ll.CostModel.calibrate(public, accounts[: args.sample // 2])
            mixed.cost_model = model
            ratios = []
            for x, (_, measured) in zip(
                accounts[args.sample // 2 :], mix[args.sample // 2 :], strict=True
            ):
                ratios.append(mixed.cost(x).estimated_seconds / measured)
    us_pub = sum(t for _, t in pub) / sum(n for n, _ in pub) * 1e6
    us_mix = sum(t for _, t in mix) / sum(n for n, _ in mix) * 1e6
    r.update(
        {
            "chain_txs": args.blocks * args.txs,
            "private_share": args.share,
            "slice_txs_mean": statistics.mean(n for n, _ in mix),
            "private_per_slice_mean": private_in_slices / len(accounts),
            "materialise_us_per_slice_tx_public": us_pub,
            "materialise_us_per_slice_tx_with_private": us_mix,
            "private_slowdown": us_mix / us_pub,
            "estimate_over_measured_min": min(ratios),
            "estimate_over_measured_median": statistics.median(ratios),
            "estimate_over_measured_max": max(ratios),
            "estimates_within_2x": sum(0.5 <= x <= 2 for x in ratios) / len(ratios),
        }
    )
    width = max(len(k) for k in r)
    for k, v in r.items():
        print(f"{k:<{width}}  {v:.3g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
