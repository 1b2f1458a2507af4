"""Node HTTP throughput (needs the node extra): a real proposer process under load on loopback,
one transaction a request and in ``/broadcast_txs`` batches, measured by
``python -m lazyledger.bench.node`` in a subprocess."""

from __future__ import annotations

from lazyledger.bench.external import flags, importable, run_module, skip
from lazyledger.bench.model import Context, Params, Result, Scenario

METRICS = (
    "accepted_tx_s",
    "included_tx_s",
    "submit_p50_ms",
    "submit_p99_ms",
    "inclusion_p50_ms",
    "inclusion_p99_ms",
    "all_included",
    "batched_accepted_tx_s",
    "batched_inclusion_p99_ms",
    "batched_all_included",
)
NODE_BATCH = 32
"""Transactions per /broadcast_txs request in the batched node figure."""
MODULE = "lazyledger.bench.node"


def run(ctx: Context, p: Params) -> Result:
    """Sustained HTTP intake of a real proposer process, through lazyledger.bench.node."""
    r = Result("node", "Node HTTP throughput", p)
    if not all(importable(m) for m in ("lazyledger.node", "starlette", "uvicorn", "httpx")):
        return skip(r, "skipped: the node extra is not installed", METRICS)
    args = flags(p["args"])
    # the module's exit status says whether every tx was included: a written document counts
    got, cmd, why = run_module(ctx, MODULE, "node.json", args, p["timeout_s"], any_status=True)
    if got is None:
        return skip(r, why, METRICS)
    r.put("accepted_tx_s", got["accepted_tx_per_s"], "tx/s")
    r.put("included_tx_s", got["included_tx_per_s"], "tx/s")
    r.put("submit_p50_ms", got["submit_latency_ms"]["p50"], "ms")
    r.put("submit_p99_ms", got["submit_latency_ms"]["p99"], "ms")
    r.put("inclusion_p50_ms", got["inclusion_latency_ms"]["p50"], "ms")
    r.put("inclusion_p99_ms", got["inclusion_latency_ms"]["p99"], "ms")
    r.put("all_included", bool(got["all_included"]))
    batched = ["--batch", str(NODE_BATCH), *args]
    b, _, _ = run_module(ctx, MODULE, "node_batched.json", batched, p["timeout_s"], any_status=True)
    if b is not None:
        r.put("batched_accepted_tx_s", b["accepted_tx_per_s"], "tx/s")
        r.put("batched_inclusion_p99_ms", b["inclusion_latency_ms"]["p99"], "ms")
        r.put("batched_all_included", bool(b["all_included"]))
    else:
        for name in ("batched_accepted_tx_s", "batched_inclusion_p99_ms", "batched_all_included"):
            r.put(name, None)
    r.notes.append(
        f"from {' '.join(cmd[1:])}: one proposer process on loopback, this machine's 2 cores "
        f"shared with the load generator; batched: {NODE_BATCH} transactions per /broadcast_txs "
        "request; full output in node.json and node_batched.json"
    )
    return r


SCENARIO = Scenario(
    "node",
    "node HTTP throughput: a proposer process under load (needs the node extra)",
    run,
    {
        "tiny": {"args": {"duration": 1, "concurrency": 4}, "timeout_s": 60},
        "quick": {"args": {"duration": 5, "concurrency": 8}, "timeout_s": 90},
        "full": {"args": {"duration": 15, "concurrency": 8}, "timeout_s": 120},
    },
    METRICS,
)
