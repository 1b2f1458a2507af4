"""Ingestion (measurement 2, issue 2's first target): validate and store pre-signed blocks, no
execution, with 1 and 2 signature workers and with group commits, beside the py-evm peer
executing as many transfers among as many accounts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from lazyledger.bench import chains, evm, measure
from lazyledger.bench.model import Context, Params, Result, Scenario, Target
from lazyledger.bench.plotting import number
from lazyledger.crypto import first_bad_signature
from lazyledger.model import Block

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INGEST_TARGET = 25_000.0
"""Issue 2: signed transactions validated and stored per second on 2 cores."""
INGEST_BATCH = 10
"""Blocks per group commit in the batched ingestion figure (Ledger.append_many)."""
TARGET = Target(
    "tx_s_workers2",
    ">=",
    INGEST_TARGET,
    "ingestion, signed tx/s on 2 cores (workers=2, a commit per block)",
    issue=2,
    also=("tx_s_workers1", "tx_s_workers2_batched", "batch_blocks"),
)


def run(ctx: Context, p: Params) -> Result:
    """Validate + store pre-signed blocks (no execution), 1 vs 2 signature workers, and the
    py-evm peer executing as many transfers among as many accounts."""
    r = Result("ingestion", "Ingestion tx/s vs an eager peer (py-evm)", p)
    genesis, blocks = chains.uniform_blocks(ctx, p)
    n = p["blocks"] * p["per_block"]
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(p["reps"]):
        for w in (1, 2):
            led, per = measure.ingest(
                ctx.path(f"ingest-w{w}"), genesis, blocks, w, on=ctx.on, desc=f"ingest w={w}"
            )
            led.close()
            rates[w].append(n / sum(per))
    one, two = float(np.median(rates[1])), float(np.median(rates[2]))
    batched = float(
        np.median(
            [
                n
                / measure.ingest_batched(
                    ctx.path(f"ingest-batch-{k}"),
                    genesis,
                    blocks,
                    INGEST_BATCH,
                    on=ctx.on,
                    desc=f"ingest w=2, {INGEST_BATCH} blocks/commit",
                )
                for k in range(p["reps"])
            ]
        )
    )
    r.put("txs", n, "txs")
    r.put("tx_s_workers1", one, "tx/s")
    r.put("tx_s_workers2", two, "tx/s")
    r.put("tx_s_workers2_batched", batched, "tx/s")
    r.put("batch_blocks", INGEST_BATCH, "blocks")
    r.put("parallel_speedup", two / one, "x")
    r.put("target_tx_s", INGEST_TARGET, "tx/s")
    r.put("target_met", TARGET.met(two))
    # where the time goes: decoding, signature checks (the ceiling), the rest
    t0 = time.perf_counter()
    decoded = [Block.from_bytes(b) for b in blocks]
    decode_s = time.perf_counter() - t0
    items = [
        (tx.public_key, tx.signature + tx.body) for b in decoded for s in b.sections for tx in s
    ]
    sig: dict[int, float] = {}
    with ThreadPoolExecutor(2) as pool:
        for w in (1, 2):
            t0 = time.perf_counter()
            first_bad_signature(items, pool if w > 1 else None, w)
            sig[w] = time.perf_counter() - t0
    total2 = n / two
    r.put("sig_checks_s_workers1", len(items) / sig[1], "sig/s")
    r.put("sig_checks_s_workers2", len(items) / sig[2], "sig/s")
    r.put("share_decode", decode_s / total2)
    r.put("share_signatures", sig[2] / total2)
    r.put("share_rest", max(0.0, 1 - (decode_s + sig[2]) / total2))
    if ctx.settings.profile_hot_paths:

        def again() -> None:
            led, _ = measure.ingest(ctx.path("ingest-prof"), genesis, blocks, 2, on=False, desc="")
            led.close()

        r.series["profile_ingestion"] = measure.profile_top(
            again, ctx.out / "profile_ingestion.txt"
        )
    why = evm.missing()
    if why is None:
        peer = evm.import_rate(
            p["accounts"], p["evm_blocks"], p["per_block"], ctx.settings.seed, ctx.on
        )
        r.put("evm_tx_s", peer["tx_s"], "tx/s")
        r.put("evm_txs", int(peer["txs"]), "txs")
        r.put("lazyledger_over_evm", two / peer["tx_s"], "x")
    else:
        r.put("evm_tx_s", None, "tx/s")
        r.put("evm_txs", None, "txs")
        r.put("lazyledger_over_evm", None, "x")
        r.notes.append(f"py-evm peer skipped: {why}")
    r.notes.append(
        f"uniform workload, {p['accounts']} funded accounts, {p['shards']} shards, blocks of "
        f"{p['per_block']} transfers, signed before timing; timed: Ledger.append(block bytes) "
        "(decode, stateless validation incl. Ed25519, LMDB writes). Shares split the workers=2 "
        "time into decode, a separate timing of the same signature checks, and the rest. "
        "py-evm: MiningChain+ShanghaiVM+NoProofConsensus, AtomicDB, chain.mine_all per block."
    )
    return r


def plot(r: Result) -> Figure:
    """tx/s with 1 and 2 workers and of the py-evm peer, against the target."""
    import matplotlib.pyplot as plt

    m = r.metrics
    names = ["lazyledger\nworkers=1", "lazyledger\nworkers=2", "py-evm\nmine_all"]
    vals = [m["tx_s_workers1"], m["tx_s_workers2"], m["evm_tx_s"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, [number(v) for v in vals])
    ax.axhline(INGEST_TARGET, color="r", ls="--", label=f"target {INGEST_TARGET:,.0f} tx/s")
    ax.set(yscale="log", ylabel="tx/s", title="ingestion (validate+store) vs eager import")
    ax.legend(fontsize=8)
    return fig


SCENARIO = Scenario(
    "ingestion",
    "validate+store tx/s, 1 vs 2 workers, vs py-evm (measurement 2, target 1)",
    run,
    {
        "tiny": {
            "shards": 4,
            "accounts": 100,
            "blocks": 4,
            "per_block": 100,
            "reps": 1,
            "evm_blocks": 1,
        },
        "quick": {
            "shards": 4,
            "accounts": 1000,
            "blocks": 30,
            "per_block": 500,
            "reps": 3,
            "evm_blocks": 2,
        },
        "full": {
            "shards": 4,
            "accounts": 1000,
            "blocks": 100,
            "per_block": 500,
            "reps": 3,
            "evm_blocks": 10,
        },
    },
    (
        "txs",
        "tx_s_workers1",
        "tx_s_workers2",
        "tx_s_workers2_batched",
        "batch_blocks",
        "parallel_speedup",
        "target_met",
        "sig_checks_s_workers1",
        "sig_checks_s_workers2",
        "share_decode",
        "share_signatures",
        "share_rest",
        "evm_tx_s",
        "lazyledger_over_evm",
    ),
    targets=(TARGET,),
    plot=plot,
)
