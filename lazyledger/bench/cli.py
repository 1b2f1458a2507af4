"""``lazyledger bench``: run named benchmark scenarios and write a results folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lazyledger.bench.model import PROFILES
from lazyledger.bench.scenarios import EXPECTED_SECONDS, SCENARIOS, defaults

RESULTS = Path("bench") / "results"


def add_parser(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to the ``lazyledger`` command line."""
    p = subparsers.add_parser(
        "bench",
        help="materialisation-cost benchmarks (results folder with JSON, CSV, Markdown, plots)",
        description=__doc__,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: about a minute")
    size.add_argument("--tiny", action="store_true", help="smoke-test sizes: seconds (tests)")
    size.add_argument(
        "--profile", choices=PROFILES, help="size profile by name (default full; --quick, --tiny)"
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIOS)}",
    )
    p.add_argument("--out", default=None, help="results folder (default bench/results/<time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile summaries")
    p.add_argument("--list", action="store_true", help="list scenarios and their parameters")
    p.add_argument(
        "--trace",
        metavar="CSV",
        help="realistic scenario: replay this trace (columns from,to[,block][,value]) instead of "
        "the Ethereum-like generator",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lazyledger.bench.model import Settings
    from lazyledger.bench.suite import run_suite

    profile = args.profile or ("tiny" if args.tiny else "quick" if args.quick else "full")
    if args.list:
        for name, sc in SCENARIOS.items():
            print(f"{name:15} {sc.title}\n{'':15} {sc.params[profile]}")
        return 0
    names = tuple(dict.fromkeys(args.scenario)) if args.scenario else defaults(profile)
    if args.trace is not None:
        from lazyledger.cli import UsageError

        if "realistic" not in names:
            raise UsageError("--trace applies to the realistic scenario (add --scenario realistic)")
        if not Path(args.trace).is_file():
            raise UsageError(f"--trace {args.trace}: not a file")
        from lazyledger.workloads import TraceWorkload

        TraceWorkload(args.trace)  # every row checked here: a bad one is a one-line error
    out = args.out or str(RESULTS / time.strftime(f"%Y%m%d-%H%M%S-{profile}"))
    print(
        f"[bench] profile {profile}: {', '.join(names)}; expected about "
        f"{EXPECTED_SECONDS[profile]} s on 2 cores; results in {out}",
        file=sys.stderr,
    )
    settings = Settings(
        profile, args.seed, names, out, not args.no_progress, not args.no_profile, args.trace
    )
    argv = sys.argv[sys.argv.index("bench") + 1 :] if "bench" in sys.argv else []
    folder = run_suite(settings, argv)
    print(folder / "report.md")
    return 0
