"""The ``lazyledger`` command line: ``demo`` (the default), plus the ``node`` and ``bench``
subcommands contributed by :mod:`lazyledger.node` and :mod:`lazyledger.bench`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import importlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from lazyledger.errors import LedgerError

SUBCOMMANDS = {"node": "lazyledger.node.cli", "bench": "lazyledger.bench.cli"}
MAX_AMOUNT = 2**63 - 1


class UsageError(LedgerError):
    """A command-line argument or a folder given on the command line cannot be used."""


# -- argument parsing --------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_HEX64 = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")


def hex32(value: str) -> bytes:
    """An account id or hash: exactly 64 hex digits, optionally after ``0x``; never padded."""
    found = _HEX64.fullmatch(value)
    if found is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        digits = len(value) - 2 if value[:2] in ("0x", "0X") else len(value)
        what = "non-hex characters" if re.search(r"[^0-9a-fA-FxX]", value) else f"{digits} digits"
        raise argparse.ArgumentTypeError(
            f"expected exactly 64 hex digits (32 bytes, optional 0x prefix), got {shown!r} ({what})"
        )
    return bytes.fromhex(found.group(1))


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``lo..hi``."""

    def parse(value: str) -> int:
        try:
            n = int(value, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {n}")
        return n

    parse.__name__ = "integer"
    return parse


def run_main(fn: Callable[[], int]) -> int:
    """Run a command: Ctrl-C exits 130 with one line; a closed stdout (``| head``) exits
    quietly; a LedgerError or OSError is a one-line ``error:`` (exit 2), never a traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away: send what is still buffered nowhere, so exit stays quiet.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (LedgerError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


# -- datadirs ----------------------------------------------------------------------------------

_ENV_DIR = re.compile(r"meta|cache|blobs|shard-\d{4}")
_ENV_FILES = frozenset({"data.mdb", "lock.mdb"})


def _foreign(path: Path) -> str | None:
    """Why ``path`` is not (only) a lazyledger ledger, or None if it is one: LOCK,
    ``meta/data.mdb``, and nothing but LMDB environments (meta, cache, blobs, shard-NNNN)."""
    if not (path / "meta" / "data.mdb").is_file() or not (path / "LOCK").is_file():
        return "it does not hold a lazyledger ledger (no meta/data.mdb and LOCK)"
    for entry in sorted(path.iterdir()):
        if entry.name == "LOCK" and not entry.is_symlink():
            continue
        if not _ENV_DIR.fullmatch(entry.name) or entry.is_symlink() or not entry.is_dir():
            return f"it holds {entry.name!r}, which is not part of a ledger"
        for inner in sorted(entry.iterdir()):
            if inner.name not in _ENV_FILES or inner.is_symlink() or not inner.is_file():
                return f"it holds {entry.name}/{inner.name}, which is not part of a ledger"
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the ledger's owner lock (an exclusive flock on LOCK, as the store takes it)."""
    fd = os.open(path / "LOCK", os.O_RDWR | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise UsageError(
                f"not removing {path}: the ledger is open in another process (its LOCK is held)"
            ) from None
        yield
    finally:
        os.close(fd)


def _clear(path: Path, fresh: bool) -> None:
    """Make room for a new ledger at ``path``. An existing one is replaced only with
    ``--fresh``, only if the folder holds a lazyledger ledger and nothing else, and only if no
    other process has it open; anything else is refused (UsageError), and nothing is deleted."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UsageError(f"{path} exists and is not a folder")
    if not path.exists() or not any(path.iterdir()):
        return  # nothing there (or an empty folder): nothing to lose
    if not fresh:
        raise UsageError(f"{path} exists; pass --fresh to replace the ledger it holds")
    why = _foreign(path)
    if why is not None:
        raise UsageError(f"not removing {path}: {why}")
    with _locked(path):
        why = _foreign(path)  # again, now that no other process can be writing it
        if why is not None:
            raise UsageError(f"not removing {path}: {why}")
        # Move it aside while holding its lock, so that no one opens it again in between;
        # the new ledger then starts from an empty path.
        here = Path(os.path.abspath(path))
        doomed = here.with_name(f".{here.name}.removing-{os.getpid()}")
        path.rename(doomed)
    shutil.rmtree(doomed)


def _demo(args: argparse.Namespace) -> int:
    from lazyledger.ledger import Ledger
    from lazyledger.workloads import Workload

    path = Path(args.datadir)
    _clear(path, args.fresh)
    wl = Workload(
        "clusters",
        n_accounts=args.accounts,
        n_shards=args.shards,
        seed=args.seed,
        cluster_size=8,
        bridge=0.0005,
    )
    with Ledger.create(path, wl.genesis()) as led:
        print(f"created a {args.shards}-shard ledger at {path}")
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


def _device(asked: str | None) -> str:
    """The torch device to train on: ``asked``, or cuda when torch sees a GPU, else cpu."""
    import torch

    from lazyledger.materialize.train import pick_device

    if asked == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--device cuda: CUDA is not available (torch {torch.__version__} sees no GPU); "
            "use --device cpu"
        )
    return pick_device(asked)


def _dnn_demo(args: argparse.Namespace) -> int:
    """Post a digits-classification job, train a claim (CUDA if available), and materialise."""
    from lazyledger import transactions as t
    from lazyledger.crypto import Keypair
    from lazyledger.ledger import Ledger
    from lazyledger.materialize import dnn
    from lazyledger.materialize.train import claim_job
    from lazyledger.model import Genesis
    from lazyledger.ops import DnnClaim, job_account

    path = Path(args.datadir)
    device = _device(args.device)
    _clear(path, args.fresh)
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lazyledger")
    except PackageNotFoundError:
        from lazyledger import __version__

        return __version__


def build_parser() -> Parser:
    """The whole ``lazyledger`` command line."""
    parser = Parser(prog="lazyledger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lazyledger {_version()}")
    sub = parser.add_subparsers(dest="command")
    count = int_in(1, 10**9)
    demo = sub.add_parser("demo", help="build a small local chain and materialise a few accounts")
    demo.add_argument("--datadir", default="lazyledger-data")
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="replace an existing ledger there (only a lazyledger ledger that no process has "
        "open; a folder holding anything else is refused)",
    )
    demo.add_argument("--shards", type=int_in(1, 4096), default=4)
    demo.add_argument("--accounts", type=int_in(2, 10**9), default=400)
    demo.add_argument("--blocks", type=count, default=40)
    demo.add_argument("--txs", type=count, default=250, help="transactions per block")
    demo.add_argument("--show", type=int_in(0, 10**9), default=6, help="accounts to materialise")
    demo.add_argument("--seed", type=int_in(0, 2**32 - 1), default=1)
    demo.set_defaults(func=_demo)
    dnn = sub.add_parser("dnn-demo", help="post a DNN job, train and claim it, materialise")
    dnn.add_argument("--datadir", default="lazyledger-dnn")
    dnn.add_argument("--fresh", action="store_true", help="replace an existing ledger there")
    dnn.add_argument(
        "--device", choices=("cpu", "cuda"), help="where to train (default: cuda if available)"
    )
    dnn.add_argument("--epochs", type=int_in(1, 10_000), default=30)
    dnn.add_argument("--hidden", type=int_in(1, 4096), default=32)
    dnn.add_argument(
        "--threshold", type=int_in(1, 1000), default=900, help="accuracy threshold, permille"
    )
    dnn.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    dnn.set_defaults(func=_dnn_demo)
    for module in SUBCOMMANDS.values():
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as e:
            if e.name is None or not module.startswith(e.name):
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list = ["demo", *args_list]
    args = build_parser().parse_args(args_list)
    return run_main(lambda: int(args.func(args)))


if __name__ == "__main__":
    raise SystemExit(main())
