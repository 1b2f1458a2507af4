"""The realistic scenario (issue 9): does laziness pay on a chain shaped like Ethereum's?

On the Ethereum-like workload (hubs, heavy tails, one-off accounts; see
:class:`lazyledger.workloads.EthereumLike`) it measures, side by side in one run:

- the eager baseline ``replay_all`` (tx/s) and the one-off cost of building the in-memory
  columnar index on first use;
- slice fractions at the head over a seeded sample of accounts (p10/p50/p90), and for the
  accounts nearest p50 and p90 a cold ``state`` against its ideal, slice fraction x
  ``replay_all``; the compiled walk's share of that cold query;
- each checkpoint policy: its cost as a multiple of one ``replay_all``, the slice fractions it
  leaves, and 1,000 random-account queries at the head as a fraction of one ``replay_all``:
  as 1,000 ``state`` calls, and as one ``states`` call (one closure and replay for all);
- ingestion of small (~15 tx) and larger (~200 tx) blocks, one durable commit per block:
  ``ingest_*_tx_s`` through ``append_stream`` (pipelined), ``ingest_*_append_tx_s`` through
  one ``append`` per block.

The clustered scenarios (``chain_length``, ``slice_fraction``) are the best case beside it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from lazyledger.bench import chains
from lazyledger.bench.measure import NEVER
from lazyledger.bench.model import Context, Params, Result, Scenario, Target
from lazyledger.bench.plotting import column
from lazyledger.bench.timing import progress
from lazyledger.ledger import Ledger
from lazyledger.materialize.index import NO_CUTS
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.shards import end_of
from lazyledger.workloads import EthereumShape, sample_accounts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS = (
    "txs",
    "accounts",
    "replay_all_tx_s",
    "slice_p10",
    "slice_p50",
    "slice_p90",
    "cold_over_ideal_p50",
    "cold_over_ideal_p90",
    "walk_share_p50",
    "walk_share_p90",
    "queries_agree",
    "ingest_small_tx_s",
    "ingest_large_tx_s",
    "ingest_small_append_tx_s",
    "ingest_large_append_tx_s",
)
TARGETS = (
    *(
        Target(f"cold_over_ideal_p{q}", "<=", 1.3, f"cold state / ideal, p{q} account", issue=9)
        for q in (50, 90)
    ),
    *(
        Target(f"walk_share_p{q}", "<=", 0.30, f"slice walk's share of cold state, p{q}", issue=9)
        for q in (50, 90)
    ),
    Target("replay_all_tx_s", ">=", 3e6, "eager replay_all, tx/s", issue=9),
    Target(
        "ingest_small_tx_s",
        ">=",
        10_000,
        "ingestion of ~15-tx blocks (append_stream), tx/s",
        issue=9,
    ),
    Target(
        "ingest_large_tx_s",
        ">=",
        25_000,
        "ingestion of ~200-tx blocks (append_stream), tx/s",
        issue=9,
    ),
)
"""Issue 9's targets on the headline metrics; the policy targets (a policy costing <= 1
``replay_all`` leaves slice p50 <= 1% and p90 <= 5%, and 1,000 queries take <= 10% of a
``replay_all``) are stated in the notes and judged on the ``policies`` series."""


def _best(fn: Any, reps: int) -> float:
    """The fastest of ``reps`` timed calls (seconds)."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def _fractions(led: Ledger, accounts: list[bytes], n: int) -> np.ndarray:
    return np.array([len(led._slice({a: end_of(led.height)})) / n for a in accounts])


def _policy(spec: list[Any]) -> CheckpointPolicy:
    return (
        CheckpointPolicy.hubs(spec[1], spec[2])
        if spec[0] == "hubs"
        else (CheckpointPolicy.epochs(spec[1]))
    )


def _ingest(ctx: Context, n: int, mean_block: int, seed: int) -> tuple[float, float]:
    """tx/s appending pre-signed Ethereum-like blocks of ~``mean_block`` txs, one durable
    commit per block, through ``append_stream`` (the next block validated while the previous
    ones are stored) and through one ``append`` per block, side by side (signing and
    proposing happen before the clock runs)."""
    src = chains.ethereum_chain(
        ctx.path(f"ingest-src-{mean_block}"),
        n,
        seed=seed,
        shape=EthereumShape(mean_block=mean_block),
        desc=f"sign {mean_block}-tx blocks",
        on=ctx.on,
    )
    try:
        blocks = [b.to_bytes() for b in src.ledger.blocks()]
        genesis = src.genesis
    finally:
        src.ledger.close()
    with Ledger.create(ctx.path(f"ingest-{mean_block}-stream"), genesis) as led:
        t0 = time.perf_counter()
        for _ in progress(
            led.append_stream(blocks), f"stream {mean_block}-tx blocks", len(blocks), ctx.on
        ):
            pass
        stream = n / (time.perf_counter() - t0)
    with Ledger.create(ctx.path(f"ingest-{mean_block}-append"), genesis) as led:
        t0 = time.perf_counter()
        for b in progress(blocks, f"append {mean_block}-tx blocks", len(blocks), ctx.on):
            led.append(b)
        one_by_one = n / (time.perf_counter() - t0)
    return stream, one_by_one


def run(ctx: Context, p: Params) -> Result:
    """See the module docstring."""
    r = Result("realistic", "Lazy vs eager on an Ethereum-like chain (hubs, heavy tails)", p)
    seed = ctx.settings.seed
    trace = ctx.settings.trace
    if trace is not None:
        chain = chains.trace_chain(
            ctx.path("trace"), trace, n_shards=p["shards"], desc="replay the trace", on=ctx.on
        )
        r.notes.append(
            f"workload: the trace {trace} (the generator's `txs` and `mean_block` do not apply; "
            "the ingestion figures still use the generator)"
        )
    else:
        chain = chains.ethereum_chain(
            ctx.path("realistic"),
            p["txs"],
            seed=seed,
            n_shards=p["shards"],
            shape=EthereumShape(mean_block=p["mean_block"]),
            desc=f"ethereum-like chain of {p['txs']} txs",
            on=ctx.on,
        )
    led = chain.ledger
    try:
        _measure(ctx, p, r, led, chain.accounts, seed)
    finally:
        led.close()
    for size, mean_block in (("small", 15), ("large", 200)):
        stream, one_by_one = _ingest(ctx, p["ingest_txs"], mean_block, seed)
        r.put(f"ingest_{size}_tx_s", stream, "tx/s")  # append_stream: the best path with one
        r.put(f"ingest_{size}_append_tx_s", one_by_one, "tx/s")  # durable commit per block
    r.notes.append(
        "targets (issue 9): cold/ideal <= 1.3 at p50 and p90, walk share <= 30%, replay_all "
        ">= 3M tx/s; a policy costing <= 1 replay_all leaves slice p50 <= 1% and p90 <= 5%, "
        "and 1,000 queries take <= 10% of a replay_all; ingestion >= 10k tx/s (15-tx blocks) "
        "and >= 25k tx/s (200-tx blocks)."
    )
    return r


def _measure(
    ctx: Context, p: Params, r: Result, led: Ledger, accounts: list[bytes], seed: int
) -> None:
    n = sum(sum(led.header(h).shard_counts) for h in range(1, led.height + 1))
    r.put("txs", n)
    r.put("accounts", len(accounts))
    r.put("blocks", led.height)
    led.checkpoint_min_rows = NEVER
    columns, _ = led._index()  # (built as the chain was appended; `storage` times a cold build)
    everyone = led.replay_all()  # (also warms the kernel)
    eager = _best(led.replay_all, p["eager_reps"])
    r.put("replay_all_s", eager, "s")
    r.put("replay_all_tx_s", n / eager, "tx/s")
    picked = sample_accounts(accounts, p["sample"], seed)
    frac = _fractions(led, picked, n)
    for q in (10, 50, 90):
        r.put(f"slice_p{q}", float(np.percentile(frac, q)))
    end = end_of(led.height)
    for q in (50, 90):
        a = picked[int(np.argmin(np.abs(frac - np.percentile(frac, q))))]
        k = led._account_id(a)
        assert k is not None
        f = len(led._slice({a: end})) / n
        cold = _best(lambda a=a: led.state(a), p["reps"])
        start = columns.start(k, columns.n)
        big = max(led.dense_min_rows, int(led.dense_fraction * columns.n))
        limit = (
            big if columns.n > big else None
        )  # the walk a cold state does (DESIGN: dense fallback)
        dense = limit is not None and f * n > limit
        walk = _best(
            lambda k=k, s=start, c=limit: columns.closure([(k, s, end)], NO_CUTS, c), p["reps"]
        )
        fraction = led.dense_fraction
        led.dense_fraction = 1.0  # the slice path alone, for comparison
        try:
            slice_only = _best(lambda a=a: led.state(a), p["reps"])
        finally:
            led.dense_fraction = fraction
        r.put(f"cold_ms_p{q}", cold * 1e3, "ms")
        r.put(f"cold_path_p{q}", "dense" if dense else "slice")
        r.put(f"cold_slice_path_ms_p{q}", slice_only * 1e3, "ms")
        r.put(f"ideal_ms_p{q}", f * eager * 1e3, "ms")
        r.put(f"cold_over_ideal_p{q}", cold / (f * eager))
        r.put(f"walk_share_p{q}", walk / cold)
    rng = np.random.default_rng(seed)
    draws: list[int] = rng.integers(0, len(accounts), int(p["queries"])).tolist()
    queries = [accounts[i] for i in draws]
    series = []
    for spec in [["none"], *p["policies"]]:
        led.drop_checkpoints()
        row: dict[str, Any] = {"policy": ":".join(str(x) for x in spec)}
        if spec[0] != "none":
            costs = []
            for _ in range(2):  # the best of two (the first may load its kernels)
                led.drop_checkpoints()
                t0 = time.perf_counter()
                row["checkpoints"] = led.run_checkpoint_policy(_policy(spec))
                costs.append(time.perf_counter() - t0)
            row["cost_over_replay_all"] = min(costs) / eager
            # blocks appended since the policy last ran: their accounts' queries walk a slice
            row["blocks_since_last_run"] = led.height % _policy(spec).every
        left = _fractions(led, picked, n)
        row["slice_p50"] = float(np.percentile(left, 50))
        row["slice_p90"] = float(np.percentile(left, 90))
        single = {}
        t0 = time.perf_counter()
        for a in progress(queries, f"queries ({row['policy']})", len(queries), ctx.on):
            single[a] = led.state(a)
        row["queries_over_replay_all"] = (time.perf_counter() - t0) / eager
        row["query_ms_mean"] = (time.perf_counter() - t0) / len(queries) * 1e3
        batch = _best(lambda: led.states(queries), p["reps"])
        row["batch_queries_over_replay_all"] = batch / eager
        # every answer checked: one at a time == batched == the eager replay
        row["agrees"] = single == led.states(queries) == {a: everyone[a] for a in queries}
        series.append(row)
    led.drop_checkpoints()
    r.series["policies"] = series
    r.put("queries_agree", all(row["agrees"] for row in series))
    for row in series[1:]:
        name = row["policy"].replace(":", "_")
        for key in (
            "cost_over_replay_all",
            "slice_p50",
            "slice_p90",
            "queries_over_replay_all",
            "batch_queries_over_replay_all",
        ):
            r.put(f"{name}_{key}", row[key])


def plot(r: Result) -> Figure:
    """Each checkpoint policy's cost against the slices it leaves and what 1,000 queries at the
    head then cost, with issue 9's target region."""
    import matplotlib.pyplot as plt

    rows = [row for row in r.series.get("policies", []) if "cost_over_replay_all" in row]
    cost = column(rows, "cost_over_replay_all")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys, target in (
        (left, ("slice_p50", "slice_p90"), (0.01, 0.05)),
        (right, ("queries_over_replay_all", "batch_queries_over_replay_all"), (0.1,)),
    ):
        for key in keys:
            ax.scatter(cost, column(rows, key), label=key)
        for row, x, y in zip(rows, cost, column(rows, keys[-1]), strict=True):
            ax.annotate(str(row["policy"]), (x, y), fontsize=7)
        for t in target:
            ax.axhline(t, color="r", ls=":", lw=0.8)
        ax.axvline(1.0, color="r", ls="--", lw=0.8, label="cost target (1 replay_all)")
        ax.set(
            xlabel="policy cost (x replay_all)", xlim=(0, max([1.5, *cost]) * 1.1), ylim=(0, None)
        )
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.legend(fontsize=7)
    left.set(ylabel="slice fraction at the head", title="slices a policy leaves")
    right.set(ylabel="1,000 queries (x replay_all)", title="queries at the head")
    fig.tight_layout()
    return fig


SCENARIO = Scenario(
    "realistic",
    "Lazy vs eager on an Ethereum-like chain: slices, policies, small blocks (issue 9)",
    run,
    {
        "tiny": {
            "shards": 4,
            "mean_block": 15,
            "txs": 4000,
            "sample": 40,
            "reps": 3,
            "eager_reps": 3,
            "queries": 100,
            "policies": [["hubs", 50, 20], ["epochs", 20]],
            "ingest_txs": 1000,
        },
        "quick": {
            "shards": 4,
            "mean_block": 200,
            "txs": 100_000,
            "sample": 100,
            "reps": 5,
            "eager_reps": 5,
            "queries": 1000,
            "policies": [["hubs", 100, 5], ["epochs", 20], ["epochs", 50], ["epochs", 100]],
            "ingest_txs": 10_000,
        },
        "full": {
            "shards": 4,
            "mean_block": 200,
            "txs": 1_000_000,
            "sample": 200,
            "reps": 5,
            "eager_reps": 5,
            "queries": 1000,
            "policies": [["hubs", 500, 20], ["epochs", 20], ["epochs", 50], ["epochs", 100]],
            "ingest_txs": 20_000,
        },
    },
    METRICS,
    targets=TARGETS,
    plot=plot,
)
