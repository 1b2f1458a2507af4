"""Private-transaction overhead (optional: needs the keyring module), measured by
``python -m lazyledger.bench.private`` in a subprocess."""

from __future__ import annotations

from lazyledger.bench.external import flags, importable, run_module, skip
from lazyledger.bench.model import Context, Params, Result, Scenario

METRICS = (
    "private_slowdown",
    "sign_public_us",
    "seal_private_us",
    "open_private_us",
    "estimate_over_measured_median",
)


def run(ctx: Context, p: Params) -> Result:
    """Private-transaction overhead, through lazyledger.bench.private (a subprocess)."""
    r = Result("private", "Private-transaction overhead", p)
    if not importable("lazyledger.materialize.keyring"):
        return skip(r, "skipped: the private-transaction module is missing", METRICS)
    args = ["--seed", str(ctx.settings.seed), *flags(p["args"])]
    got, cmd, why = run_module(
        ctx, "lazyledger.bench.private", "private.json", args, p["timeout_s"]
    )
    if got is None:
        return skip(r, why, METRICS)
    for m in METRICS:
        r.put(m, got.get(m), "us" if m.endswith("_us") else "x")
    r.notes.append(f"from {' '.join(cmd[1:])}; full output in private.json")
    return r


SCENARIO = Scenario(
    "private",
    "private-transaction overhead via lazyledger.bench.private (optional)",
    run,
    {
        "tiny": {"args": {"accounts": 40, "blocks": 4, "txs": 50, "sample": 8}, "timeout_s": 120},
        "quick": {
            "args": {"accounts": 400, "blocks": 20, "txs": 250, "sample": 20},
            "timeout_s": 180,
        },
        "full": {
            "args": {"accounts": 400, "blocks": 40, "txs": 250, "sample": 40},
            "timeout_s": 300,
        },
    },
    METRICS,
)
