"""Lazy vs eager as the chain grows ~10x with the watched slice fixed (measurements 1 and 4).

A clusters workload with no bridges: the watched cluster gets ``watched_txs`` transfers spread
evenly over every block while all other traffic goes to the other clusters, so its slice stays
the same size as the chain grows."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from lazyledger.bench import chains, measure
from lazyledger.bench.model import Context, Params, Result, Scenario, Target
from lazyledger.bench.plotting import column
from lazyledger.bench.timing import percentiles
from lazyledger.ledger import Ledger
from lazyledger.workloads import Workload

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAZY_TARGET = 2.0
"""Issue 2: a lazy query costs at most 2x (slice fraction x eager replay)."""


def run(ctx: Context, p: Params) -> Result:
    """Lazy ``state`` of an account whose slice is fixed while the chain grows ~10x."""
    r = Result("chain_length", "Lazy query vs chain length (slice fixed)", p)
    wl = Workload(
        "clusters",
        n_accounts=p["accounts"],
        n_shards=p["shards"],
        seed=ctx.settings.seed,
        cluster_size=p["cluster_size"],
    )
    stream = chains.ClusterStream(wl, ctx.settings.seed)
    k = p["watched_txs"]
    longest = max(p["lengths"])
    rng = np.random.default_rng(ctx.settings.seed)
    others = rng.integers(1, stream.n_clusters, size=longest - k).tolist()
    background = stream.txs(others, "sign background txs", ctx.on)
    watched = stream.txs([0] * k, "sign watched-cluster txs", ctx.on)
    accounts = [kp.account for kp in stream.members(0)]
    r.put("kernel_load_s", measure.warm_kernel(), "s")
    rows: list[dict[str, Any]] = []
    for n in p["lengths"]:
        txs = chains.interleave(background[: n - k], watched)
        led, _ = chains.build(
            ctx.path(f"len{n}"),
            wl.genesis(),
            txs,
            p["per_block"],
            wl.issuer,
            desc=f"chain of {n} txs",
            on=ctx.on,
        )
        try:
            row = _lazy_vs_eager(ctx, led, accounts, n, p)
            if n == longest and ctx.settings.profile_hot_paths:
                r.series["profile_lazy_query"] = measure.profile_top(
                    partial(measure.cold_latencies, led, accounts, 20, False),
                    ctx.out / "profile_lazy_query.txt",
                )
            warm = percentiles(measure.warm_latencies(led, accounts, p["reps"], ctx.on))
            row.update({f"warm_{q}_ms": warm[q] for q in ("p50", "p95", "p99")})
            row["agrees"] = measure.agree(led, accounts[:3])
        finally:
            led.close()
        rows.append(row)
    r.series["points"] = rows
    first, last = rows[0], rows[-1]
    r.put("chain_growth", last["chain_txs"] / first["chain_txs"], "x")
    r.put("slice_txs", last["slice_txs"], "txs")
    r.put("lazy_cold_growth", last["cold_p50_ms"] / first["cold_p50_ms"], "x")
    r.put("eager_growth", last["eager_p50_ms"] / first["eager_p50_ms"], "x")
    for q in ("p50", "p95", "p99"):
        r.put(f"longest_cold_{q}_ms", last[f"cold_{q}_ms"], "ms")
        r.put(f"longest_warm_{q}_ms", last[f"warm_{q}_ms"], "ms")
    r.put("longest_eager_p50_ms", last["eager_p50_ms"], "ms")
    r.put("longest_eager_over_lazy", last["eager_p50_ms"] / last["cold_p50_ms"], "x")
    r.put("longest_ratio_to_ideal", last["ratio_to_ideal"], "x")
    r.put("slice_share_of_state", last["slice_share"], "")
    r.put("agrees", all(bool(x["agrees"]) for x in rows))
    r.notes.append(
        f"clusters of {p['cluster_size']} accounts, no bridges; the watched cluster gets "
        f"{k} transfers spread evenly over every block, all other traffic goes to the other "
        "clusters. Cold: no checkpoint exists or is written; warm: repeated queries after a "
        "checkpoint at the head. ratio_to_ideal = lazy cold p50 / (slice fraction x eager p50)."
    )
    return r


def _lazy_vs_eager(
    ctx: Context, led: Ledger, accounts: list[bytes], n: int, p: Params
) -> dict[str, Any]:
    """Cold/warm/slice/eager figures for ``accounts`` (one cluster) on ``led``."""
    slice_txs = len(led.slice(accounts[0], use_checkpoints=False))
    cold = percentiles(measure.cold_latencies(led, accounts, p["reps"], ctx.on))
    sl = percentiles(measure.slice_latencies(led, accounts, p["reps"]))
    eag = measure.eager(led, p["eager_reps"])
    frac = slice_txs / n
    row: dict[str, Any] = {
        "chain_txs": n,
        "slice_txs": slice_txs,
        "slice_fraction": frac,
        "cold_p50_ms": cold["p50"],
        "cold_p95_ms": cold["p95"],
        "cold_p99_ms": cold["p99"],
        "slice_p50_ms": sl["p50"],
        "slice_share": sl["p50"] / cold["p50"],
        "eager_p50_ms": eag["p50"],
        "eager_p95_ms": eag["p95"],
        "eager_p99_ms": eag["p99"],
        "ratio_to_ideal": cold["p50"] / (frac * eag["p50"]),
    }
    return row


def plot(r: Result) -> Figure:
    """Eager and lazy (cold p50..p99, warm) cost against chain length, log-log."""
    import matplotlib.pyplot as plt

    pts = r.series["points"]
    x = column(pts, "chain_txs")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, column(pts, "eager_p50_ms"), "s-", label="eager replay_all p50")
    ax.plot(x, column(pts, "cold_p50_ms"), "o-", label="lazy state, cold p50")
    ax.fill_between(
        x, column(pts, "cold_p50_ms"), column(pts, "cold_p99_ms"), alpha=0.2,
        label="lazy cold p50..p99",
    )  # fmt: skip
    ax.plot(x, column(pts, "warm_p50_ms"), "^-", label="lazy state, warm p50")
    ax.set(xscale="log", yscale="log", xlabel="chain length (txs)", ylabel="ms")
    ax.set_title(f"cost vs chain length, slice fixed at {pts[-1]['slice_txs']} txs")
    ax.legend(fontsize=8)
    return fig


SCENARIO = Scenario(
    "chain_length",
    "lazy vs eager as the chain grows 10x, slice fixed (measurements 1, 4)",
    run,
    {
        "tiny": {
            **chains.CLUSTERS,
            "accounts": 200,
            "watched_txs": 20,
            "lengths": [200, 500, 2000],
            "per_block": 100,
            "reps": 6,
            "eager_reps": 2,
        },
        "quick": {
            **chains.CLUSTERS,
            "accounts": 2000,
            "watched_txs": 200,
            "lengths": [2000, 5000, 10000, 20000],
            "per_block": 500,
            "reps": 100,
            "eager_reps": 3,
        },
        "full": {
            **chains.CLUSTERS,
            "accounts": 10000,
            "watched_txs": 500,
            "lengths": [20000, 50000, 100000, 200000],
            "per_block": 1000,
            "reps": 200,
            "eager_reps": 5,
        },
    },
    (
        "chain_growth",
        "slice_txs",
        "lazy_cold_growth",
        "eager_growth",
        "longest_cold_p50_ms",
        "longest_cold_p95_ms",
        "longest_cold_p99_ms",
        "longest_warm_p50_ms",
        "longest_warm_p95_ms",
        "longest_warm_p99_ms",
        "longest_eager_p50_ms",
        "longest_eager_over_lazy",
        "longest_ratio_to_ideal",
        "slice_share_of_state",
        "agrees",
    ),
    targets=(
        Target(
            "longest_ratio_to_ideal",
            "<=",
            LAZY_TARGET,
            "lazy cost / ((slice/chain) x eager), clusters chain, longest",
            issue=2,
        ),
    ),
    plot=plot,
)
