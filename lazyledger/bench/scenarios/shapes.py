"""Workload shapes side by side (measurement 6): uniform, zipf, clusters and amm chains, each
with its ingestion rate, slice fractions, lazy against eager cost and bytes per transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lazyledger.bench import chains, measure
from lazyledger.bench.model import Context, Params, Result, Scenario
from lazyledger.bench.plotting import column
from lazyledger.bench.timing import percentiles
from lazyledger.workloads import Workload

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SHAPES = ("uniform", "zipf", "clusters", "amm")
HEADLINE = ("ingest_tx_s", "mean_slice_fraction", "eager_over_lazy", "ratio_to_ideal_max")
"""The per-shape figures reported as ``<shape>_<figure>`` metrics."""


def run(ctx: Context, p: Params) -> Result:
    """Ingestion, eager and lazy cost, and storage for each workload shape."""
    r = Result("shapes", "Workload shapes: uniform, zipf, clusters, amm", p)
    measure.warm_kernel()
    rows: list[dict[str, Any]] = []
    n = p["blocks"] * p["per_block"]
    for shape in p["shapes"]:
        wl = Workload(
            shape,
            n_accounts=p["accounts"],
            n_shards=p["shards"],
            seed=ctx.settings.seed,
            cluster_size=p["cluster_size"],
            bridge=p["bridge"],
        )
        blocks = chains.workload_blocks(
            ctx.path(f"sign-{shape}"),
            wl,
            p["blocks"],
            p["per_block"],
            desc=f"sign {shape}",
            on=ctx.on,
        )
        led, per = measure.ingest(
            ctx.path(shape), wl.genesis(), blocks, 2, on=ctx.on, desc=f"ingest {shape}"
        )
        try:
            eag = measure.eager(led, p["eager_reps"])
            picks = sorted({0, p["accounts"] // 2, p["accounts"] - 1})
            accounts = [wl.keys[i].account for i in picks]
            costs, ratios, fracs = [], [], []
            for acc in accounts:
                frac = len(led.slice(acc, use_checkpoints=False)) / n
                cold = percentiles(measure.cold_latencies(led, [acc], p["reps"], False))
                costs.append(cold["p50"])
                fracs.append(frac)
                ratios.append(cold["p50"] / (frac * eag["p50"]) if frac else float("nan"))
            used, _ = measure.lmdb_bytes(led)
        finally:
            led.close()
        row: dict[str, Any] = {
            "shape": shape,
            "txs": n,
            "ingest_tx_s": n / sum(per),
            "eager_p50_ms": eag["p50"],
            "mean_slice_fraction": float(np.mean(fracs)),
            "lazy_cold_p50_ms": float(np.median(costs)),
            "eager_over_lazy": eag["p50"] / float(np.median(costs)),
            "ratio_to_ideal_max": float(np.nanmax(ratios)),
            "disk_bytes_per_tx": used / n,
        }
        rows.append(row)
        for key in HEADLINE:
            r.put(f"{shape}_{key}", row[key])
    r.series["points"] = rows
    r.notes.append(
        f"workloads.Workload(shape, {p['accounts']} accounts, cluster_size={p['cluster_size']}, "
        f"bridge={p['bridge']}); lazy cost: p50 over {p['reps']} cold queries of accounts "
        f"{{0, n/2, n-1}} (account 0 is the hub of zipf); eager: replay_all p50."
    )
    return r


def plot(r: Result) -> Figure:
    """What laziness saves and the mean slice fraction, per shape."""
    import matplotlib.pyplot as plt

    pts = r.series["points"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    names = [str(p["shape"]) for p in pts]
    a1.bar(names, column(pts, "eager_over_lazy"))
    a1.set(yscale="log", ylabel="eager p50 / lazy cold p50", title="what laziness saves")
    a2.bar(names, column(pts, "mean_slice_fraction"))
    a2.set(ylabel="mean slice fraction", title="slice size by shape")
    return fig


def _sized(accounts: int, blocks: int, per_block: int, reps: int, eager_reps: int) -> Params:
    return {
        "shards": 4,
        "cluster_size": 10,
        "accounts": accounts,
        "blocks": blocks,
        "per_block": per_block,
        "reps": reps,
        "eager_reps": eager_reps,
        "bridge": 0.01,
        "shapes": list(SHAPES),
    }


SCENARIO = Scenario(
    "shapes",
    "uniform, zipf, clusters, amm side by side (measurement 6)",
    run,
    {
        "tiny": _sized(accounts=100, blocks=2, per_block=100, reps=3, eager_reps=2),
        "quick": _sized(accounts=1000, blocks=10, per_block=500, reps=10, eager_reps=3),
        "full": _sized(accounts=2000, blocks=60, per_block=500, reps=30, eager_reps=5),
    },
    tuple(f"{s}_{k}" for s in SHAPES for k in HEADLINE),
    plot=plot,
)
