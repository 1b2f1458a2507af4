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


def _clear(path: Path, fresh: bool) -> bool:
    """Make room for a new datadir; refuse to replace an existing one without ``--fresh``."""
    if path.exists():
        if not fresh:
            print(f"{path} exists; pass --fresh to replace it", file=sys.stderr)
            return False
        shutil.rmtree(path)
    return True


def _demo(args: argparse.Namespace) -> int:
    from lazyledger.ledger import Ledger
    from lazyledger.workloads import Workload

    path = Path(args.datadir)
    if not _clear(path, args.fresh):
        return 2
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


def _dnn_demo(args: argparse.Namespace) -> int:
    """Post a digits-classification job, train a claim (CUDA if available), and materialise."""
    from lazyledger import transactions as t
    from lazyledger.crypto import Keypair
    from lazyledger.ledger import Ledger
    from lazyledger.materialize import dnn
    from lazyledger.materialize.train import claim_job, pick_device
    from lazyledger.model import Genesis
    from lazyledger.ops import DnnClaim, job_account

    path = Path(args.datadir)
    if not _clear(path, args.fresh):
        return 2
    owner, provider, authority = (Keypair.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    g = Genesis(
        "dnn-demo",
        2,
        [authority.public_key],
        {0: authority.account},
        {owner.account: {0: 10_000}, provider.account: {0: 0}},
        {},
    )
    spec = dnn.ModelSpec.mlp(64, (args.hidden,), 10, input_shift=4)
    train_blob, val_blob = dnn.digits_blobs()
    with Ledger.create(path, g) as led:
        job = t.dnn_job(
            owner,
            nonce=0,
            spec=led.put_blob(spec.to_bytes(), kind="spec"),
            train=led.put_blob(train_blob, kind="dataset"),
            validation=led.put_blob(val_blob, kind="dataset"),
            threshold_permille=args.threshold,
            asset=0,
            bounty=1_000,
        )
        led.append(led.propose([job], authority))
        device = pick_device(args.device)
        t0 = time.perf_counter()
        claim = claim_job(
            led,
            job_account(job.id),
            provider,
            nonce=0,
            epochs=args.epochs,
            seed=args.seed,
            device=device,
        )
        t_train = time.perf_counter() - t0
        led.append(led.propose([claim], authority))
        print(
            f"job {job_account(job.id).hex()[:16]}: digits MLP 64-{args.hidden}-10, "
            f"threshold {args.threshold}‰, trained on {device} in {t_train:.2f} s"
        )
        report = led.cost(provider.account)
        print(
            f"cost before materialising: {report.slice_txs} txs in the slice, "
            f"{report.dnn_checks} claim check(s) to run"
        )
        led.state(owner.account)  # compile the replay kernel, and the check kernel below, first
        claim_call = claim.call
        assert isinstance(claim_call, DnnClaim)
        dnn.infer(spec, led.get_blob(claim_call.weights), dnn.decode_dataset(val_blob)[0][:1])
        t0 = time.perf_counter()
        state = led.state(provider.account)
        t_check = time.perf_counter() - t0
        receipt = led.receipt(claim.id)
        verdict = "accepted" if receipt.applied else f"rejected ({receipt.reason})"
        print(
            f"claim {verdict}; provider balance {state.balances.get(0, 0)}; "
            f"materialised (check included) in {t_check * 1e3:.1f} ms, "
            f"{t_train / t_check:.0f}x less than training"
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
    dnn = sub.add_parser("dnn-demo", help="post a DNN job, train and claim it, materialise")
    dnn.add_argument("--datadir", default="lazyledger-dnn")
    dnn.add_argument("--fresh", action="store_true", help="replace an existing datadir")
    dnn.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    dnn.add_argument("--epochs", type=int, default=30)
    dnn.add_argument("--hidden", type=int, default=32)
    dnn.add_argument("--threshold", type=int, default=900, help="accuracy threshold, permille")
    dnn.add_argument("--seed", type=int, default=0)
    dnn.set_defaults(func=_dnn_demo)
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
