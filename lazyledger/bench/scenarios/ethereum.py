"""The Ethereum-like workload next to a real window (issue 9): for each chain size, counts,
shares, slice-fraction percentiles and the share of failed transfers of
:class:`lazyledger.workloads.EthereumLike` beside those of a 20,000-transaction window of 2017
mainnet."""

from __future__ import annotations

import time
from typing import Any

import attrs
import numpy as np

from lazyledger.bench import chains
from lazyledger.bench.model import Context, Params, Result, Scenario
from lazyledger.workloads import (
    ETHEREUM_2017,
    ChainStats,
    EthereumShape,
    chain_stats,
    failed_share,
    head_slice_sizes,
    sample_accounts,
    slice_fractions,
)

AGGREGATES = tuple(name for name, _ in ETHEREUM_2017.rows())
METRICS = (
    *AGGREGATES,
    "worst_relative_error",
    "worst_slice_error",
    "slice_p50_ledger_sample",
    "slice_sample",
    "slice_agrees",
    "mean_block_measured",
    "build_tx_s",
)


def _worst(stats: ChainStats) -> tuple[float, float]:
    """Largest relative error over shares and counts per transaction, largest absolute error
    over slice percentiles, against the real window."""
    real = ETHEREUM_2017
    rel, slices = 0.0, 0.0
    for (name, value), (_, want) in zip(stats.rows(), real.rows(), strict=True):
        if name == "txs" or want is None or value is None:
            continue
        if name.startswith("slice_"):
            slices = max(slices, abs(float(value) - float(want)))
        elif isinstance(want, int):  # a count: per transaction, so any chain size compares
            rel = max(rel, abs(value / stats.txs / (want / real.txs) - 1))
        else:
            rel = max(rel, abs(float(value) - want) / want)
    return rel, slices


def run(ctx: Context, p: Params) -> Result:
    """The Ethereum-like workload's aggregates next to those of a real 2017 window, for each
    chain size: counts, shares, slice-fraction percentiles (every account, one backward
    pass; a sample cross-checked with ``Ledger.slice``) and the share of failed transfers."""
    r = Result("ethereum", "Ethereum-like chain vs a real 2017 window", p)
    table: dict[str, dict[str, Any]] = {
        name: {"aggregate": name, "real_2017": value} for name, value in ETHEREUM_2017.rows()
    }
    sizes: list[dict[str, Any]] = []
    seed = ctx.settings.seed
    for k, n in enumerate(p["txs"]):
        chain = chains.ethereum_chain(
            ctx.path(f"eth{n}"),
            n,
            seed=seed,
            n_shards=p["shards"],
            shape=EthereumShape(mean_block=p["mean_block"]),
            desc=f"ethereum-like chain of {n} txs",
            on=ctx.on,
        )
        led = chain.ledger
        try:
            txs = [tx for b in led.blocks() for sec in b.sections for tx in sec]
            stats = attrs.evolve(chain_stats(txs), failed_share=failed_share(led))
            picked = sample_accounts(chain.accounts, p["slice_sample"], seed)
            t0 = time.perf_counter()
            by_ledger = slice_fractions(led, picked)
            slice_ms = 1e3 * (time.perf_counter() - t0) / max(1, len(picked))
            fast = head_slice_sizes([tx.access() for tx in txs], picked)
            agrees = [f / len(txs) for f in fast] == [by_ledger[a] for a in picked]
            height = led.height
        finally:
            led.close()
        for name, value in stats.rows():
            table[name][f"n={n}"] = value
        sample_p50 = float(np.percentile(list(by_ledger.values()), 50))
        sizes.append(
            {
                "txs": n,
                "accounts": stats.accounts,
                "accounts_per_tx": stats.accounts / n,
                "blocks": height,
                "mean_block": n / height,
                "build_s": chain.seconds,
                "build_tx_s": n / chain.seconds,
                "slice_p50_ledger_sample": sample_p50,
                "ledger_slice_ms": slice_ms,
                "slice_agrees": agrees,
            }
        )
        if k == 0:  # headline figures: the first (calibration) size
            for name, value in stats.rows():
                r.put(name, value)
            rel, sl = _worst(stats)
            r.put("worst_relative_error", rel)
            r.put("worst_slice_error", sl)
            r.put("slice_p50_ledger_sample", sample_p50)
            r.put("slice_sample", len(picked))
            r.put("slice_agrees", agrees)
            r.put("mean_block_measured", n / height, "txs")
            r.put("build_tx_s", n / chain.seconds, "tx/s")
    r.series["aggregates"] = list(table.values())
    r.series["sizes"] = sizes
    r.notes.append(
        "workloads.EthereumLike with default EthereumShape (mean block "
        f"{p['mean_block']} txs, {p['shards']} shards): exchange hot wallets (deposits in, "
        "withdrawal batches out), mining pools paying their miners in bursts, rare airdrops, "
        "popular contracts (80% of calls zero-value: amount 1 here), funded users with Zipf "
        "activity and new accounts that may spend later. real_2017: a 20,000-tx window of "
        "Ethereum mainnet. Slice fractions: slice size / chain txs at the head, no checkpoints, "
        "over every account in one backward pass (workloads.head_slice_sizes); a seeded sample "
        "of accounts is checked against Ledger.slice (slice_agrees). worst_relative_error: "
        "shares and counts per tx; worst_slice_error: absolute, over p10/p50/p90. build: pick, "
        "sign, propose and append one block at a time (a commit per block)."
    )
    return r


SCENARIO = Scenario(
    "ethereum",
    "Ethereum-like chain: aggregates vs a real 2017 window (issue 9)",
    run,
    {
        "tiny": {"shards": 4, "mean_block": 15, "txs": [2000], "slice_sample": 40},
        "quick": {"shards": 4, "mean_block": 15, "txs": [20000], "slice_sample": 100},
        "full": {"shards": 4, "mean_block": 15, "txs": [20000, 200000], "slice_sample": 50},
    },
    METRICS,
)
