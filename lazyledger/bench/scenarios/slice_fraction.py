"""Lazy cost against slice fraction, with the eager line (measurement 1's second plot, issue 2's
lazy-cost target): one chain whose clusters get graded shares of the traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lazyledger.bench import chains, measure
from lazyledger.bench.model import Context, Params, Result, Scenario, Target
from lazyledger.bench.plotting import column, number
from lazyledger.bench.scenarios.chain_length import LAZY_TARGET
from lazyledger.bench.timing import percentiles, progress
from lazyledger.workloads import Workload

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def run(ctx: Context, p: Params) -> Result:
    """Lazy cost against slice fraction on one chain whose clusters get graded shares."""
    r = Result("slice_fraction", "Lazy query vs slice fraction (eager line)", p)
    wl = Workload(
        "clusters",
        n_accounts=p["accounts"],
        n_shards=p["shards"],
        seed=ctx.settings.seed + 1,
        cluster_size=p["cluster_size"],
    )
    stream = chains.ClusterStream(wl, ctx.settings.seed + 1)
    fractions: list[float] = p["fractions"]
    n = p["txs"]
    rest = stream.n_clusters - len(fractions)
    if rest < 1 or sum(fractions) >= 1:
        raise ValueError("fractions must leave traffic and clusters for the background")
    weights = np.array([*fractions, *[(1 - sum(fractions)) / rest] * rest])
    rng = np.random.default_rng(ctx.settings.seed + 1)
    clusters = rng.choice(len(weights), size=int(n), p=weights / weights.sum()).tolist()
    txs = stream.txs(clusters, "sign graded-cluster txs", ctx.on)
    measure.warm_kernel()
    led, _ = chains.build(
        ctx.path("graded"), wl.genesis(), txs, p["per_block"], wl.issuer, on=ctx.on
    )
    rows: list[dict[str, Any]] = []
    try:
        eag = measure.eager(led, p["eager_reps"])
        for c in progress(range(len(fractions)), "slice fractions", len(fractions), ctx.on):
            accounts = [kp.account for kp in stream.members(c)]
            slice_txs = len(led.slice(accounts[0], use_checkpoints=False))
            cold = percentiles(measure.cold_latencies(led, accounts, p["reps"], False))
            sl = percentiles(measure.slice_latencies(led, accounts, p["reps"]))
            frac = slice_txs / n
            rows.append(
                {
                    "cluster": c,
                    "slice_txs": slice_txs,
                    "slice_fraction": frac,
                    "cold_p50_ms": cold["p50"],
                    "cold_p95_ms": cold["p95"],
                    "cold_p99_ms": cold["p99"],
                    "slice_share": sl["p50"] / cold["p50"],
                    "ideal_ms": frac * eag["p50"],
                    "ratio_to_ideal": cold["p50"] / (frac * eag["p50"]) if frac else None,
                }
            )
        agrees = measure.agree(led, [kp.account for kp in stream.members(0)][:2])
    finally:
        led.close()
    r.series["points"] = rows
    ratios = [float(x["ratio_to_ideal"]) for x in rows if x["ratio_to_ideal"] is not None]
    r.put("chain_txs", n, "txs")
    r.put("eager_p50_ms", eag["p50"], "ms")
    r.put("ratio_to_ideal_min", min(ratios), "x")
    r.put("ratio_to_ideal_median", float(np.median(ratios)), "x")
    r.put("ratio_to_ideal_max", max(ratios), "x")
    r.put("points_within_2x", sum(x <= LAZY_TARGET for x in ratios))
    r.put("points", len(ratios))
    r.put("agrees", agrees)
    r.notes.append(
        "one chain; cluster c receives the share fractions[c] of all transfers (the rest is "
        "spread over background clusters); one point per graded cluster. ideal = slice "
        "fraction x eager replay_all p50."
    )
    return r


def plot(r: Result) -> Figure:
    """Lazy cold p50 per slice fraction against the eager line, the ideal and the 2x band."""
    import matplotlib.pyplot as plt

    pts = r.series["points"]
    eager_ms = number(r.metrics["eager_p50_ms"])
    fr = column(pts, "slice_fraction")
    lo, hi = min(fr) / 2, 1.0
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([lo, hi], [eager_ms, eager_ms], "k-", label="eager replay_all p50")
    ax.plot([lo, hi], [lo * eager_ms, hi * eager_ms], "k--", label="ideal: fraction x eager")
    ax.fill_between(
        [lo, hi], [lo * eager_ms, hi * eager_ms],
        [LAZY_TARGET * lo * eager_ms, LAZY_TARGET * hi * eager_ms],
        alpha=0.15, color="g", label=f"target: within {LAZY_TARGET:g}x of ideal",
    )  # fmt: skip
    ax.plot(fr, column(pts, "cold_p50_ms"), "o", label="lazy state, cold p50")
    ax.set(xscale="log", yscale="log", xlabel="slice fraction of the chain", ylabel="ms")
    ax.set_title(f"cost vs slice fraction ({r.metrics['chain_txs']} txs)")
    ax.legend(fontsize=8)
    return fig


SCENARIO = Scenario(
    "slice_fraction",
    "lazy cost vs slice fraction, eager line (measurement 1, target 3)",
    run,
    {
        "tiny": {
            **chains.CLUSTERS,
            "accounts": 200,
            "txs": 1000,
            "fractions": [0.3, 0.1, 0.03],
            "per_block": 250,
            "reps": 4,
            "eager_reps": 2,
        },
        "quick": {
            **chains.CLUSTERS,
            "accounts": 2000,
            "txs": 20000,
            "fractions": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
            "per_block": 500,
            "reps": 40,
            "eager_reps": 3,
        },
        "full": {
            **chains.CLUSTERS,
            "accounts": 10000,
            "txs": 100000,
            "fractions": [0.5, 0.2, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003],
            "per_block": 1000,
            "reps": 40,
            "eager_reps": 5,
        },
    },
    (
        "chain_txs",
        "eager_p50_ms",
        "ratio_to_ideal_min",
        "ratio_to_ideal_median",
        "ratio_to_ideal_max",
        "points_within_2x",
        "points",
        "agrees",
    ),
    targets=(
        Target(
            "ratio_to_ideal_max",
            "<=",
            LAZY_TARGET,
            "lazy cost / ((slice/chain) x eager), graded slice fractions, worst point",
            issue=2,
            also=("ratio_to_ideal_min", "points_within_2x", "points"),
        ),
    ),
    plot=plot,
)
