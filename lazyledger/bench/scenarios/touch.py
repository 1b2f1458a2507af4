"""The touch commitment's costs (issue 10), through :mod:`lazyledger.bench.touch`: ingestion of
the same pre-signed Ethereum-like blocks with and without maintaining and checking
``touch_root`` (interleaved rounds in one run), the map's rebuild on open, and prefix-proof sizes
and check times over a map built directly. Run only when named (``--scenario touch``);
the launcher ``bench_touch.py`` of a clone prints the same measurements as one JSON
document."""

from __future__ import annotations

from typing import Any

from lazyledger.bench.model import Context, Params, Result, Scenario, Value
from lazyledger.bench.touch import ingestion_overhead, proof_sizes

PER_BLOCK = ("tx_s_with", "tx_s_without", "overhead_percent", "overhead_percent_warm_tree")
PROOF = ("bytes_median", "bytes_p99", "bytes_max", "hub_bytes_max", "json_bytes_median")
BLOCKS = (15, 200)
"""Mean block sizes of the ingestion runs: small (Ethereum-like) and larger blocks."""
METRICS = (
    *(f"{k}_{b}" for b in BLOCKS for k in (*PER_BLOCK, "rebuild_on_open_s")),
    *(f"proof_{k}" for k in PROOF),
    "proof_check_us_median",
    "proof_map_build_s",
)


def run(ctx: Context, p: Params) -> Result:
    """See the module docstring."""
    r = Result("touch", "Touch commitment: ingestion overhead, rebuild, proof sizes", p)
    work = ctx.path("touch")
    work.mkdir()
    rows: list[dict[str, Value]] = []
    for b in BLOCKS:
        got: dict[str, Any] = ingestion_overhead(
            work, p["txs"], b, rounds=p["rounds"], seed=ctx.settings.seed
        )
        rows.append({k: v for k, v in got.items() if not isinstance(v, list)})
        for k in PER_BLOCK:
            r.put(f"{k}_{b}", got[k], "tx/s" if k.startswith("tx_s") else "%")
        r.put(f"rebuild_on_open_s_{b}", got["rebuild_on_open_s"], "s")
    r.series["ingestion"] = rows
    proofs = proof_sizes(
        p["accounts"], 2 * p["accounts"], sample=p["sample"], seed=ctx.settings.seed
    )
    for k in PROOF:
        r.put(f"proof_{k}", proofs[k], "B")
    r.put("proof_check_us_median", proofs["check_us_median"], "us")
    r.put("proof_map_build_s", proofs["build_s"], "s")
    r.series["proofs"] = [proofs]
    r.notes.append(
        f"ingestion: {p['txs']} Ethereum-like transfers in blocks of ~15 and ~200 txs, one durable "
        f"commit per block, {p['rounds']} interleaved round(s) with and without the touch "
        "commitment (a bench-only ledger whose touch map is null); warm tree: the bucket tree's "
        "kernels loaded first; rebuild: Ledger.open plus the first touch proof. Proofs: a map "
        f"of {p['accounts']:,} accounts and {2 * p['accounts']:,} two-account transactions "
        f"built directly, {p['sample']} random prefix proofs checked; bytes as binary (json: "
        "the node's JSON)."
    )
    return r


SCENARIO = Scenario(
    "touch",
    "touch commitment: ingestion with and without it, rebuild on open, proof sizes (issue 10)",
    run,
    {
        "tiny": {"txs": 300, "rounds": 1, "accounts": 2000, "sample": 200},
        "quick": {"txs": 3000, "rounds": 3, "accounts": 50_000, "sample": 2000},
        "full": {"txs": 30_000, "rounds": 3, "accounts": 1_000_000, "sample": 2000},
    },
    METRICS,
    default_in=(),
)
