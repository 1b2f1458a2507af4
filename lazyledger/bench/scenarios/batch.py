"""The batch scenario (issue 13): many accounts materialised at one height.

On an Ethereum-like chain it takes a seeded sample of accounts and materialises all of them at
the head, side by side in one run: one ``state`` call per account, one ``states`` call (one
closure and one replay shared by every account), ``states(executor="process")`` with 1 and
2 worker processes holding read-only handles, and ``states(executor=RayExecutor(workers=2))``
on a local Ray instance whose 2 actors hold read-only handles (pool and Ray start-up timed
apart). Results must be identical; throughput is accounts/s and slice transactions/s (the sum
of the accounts' own slices, what one-by-one replay would replay)."""

from __future__ import annotations

import importlib.util
import time

from lazyledger.bench import chains
from lazyledger.bench.measure import NEVER
from lazyledger.bench.model import Context, Params, Result, Scenario
from lazyledger.scale import RayExecutor
from lazyledger.workloads import EthereumShape, sample_accounts

METRICS = (
    "accounts",
    "one_by_one_accounts_s",
    "batch_accounts_s",
    "process1_accounts_s",
    "process2_accounts_s",
    "ray2_accounts_s",
    "batch_over_one_by_one",
    "identical",
)


def run(ctx: Context, p: Params) -> Result:
    """See the module docstring."""
    r = Result("batch", "Batch materialisation: one by one, states(), worker processes, Ray", p)
    seed = ctx.settings.seed
    chain = chains.ethereum_chain(
        ctx.path("batch"),
        p["txs"],
        seed=seed,
        shape=EthereumShape(mean_block=p["mean_block"]),
        desc=f"ethereum-like chain of {p['txs']} txs",
        on=ctx.on,
    )
    led = chain.ledger
    try:
        led.checkpoint_min_rows = NEVER
        picked = sample_accounts(chain.accounts, p["accounts"], seed)
        led.state(picked[0])  # build the index, warm the kernels
        slice_txs = sum(len(led._slice({a: (led.height + 1) << 32})) for a in picked)
        t0 = time.perf_counter()
        one = {a: led.state(a) for a in picked}
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        together = led.states(picked)
        t_batch = time.perf_counter() - t0
        identical = one == together
        for workers in (1, 2):
            t0 = time.perf_counter()
            # start the pool; every worker opens its handle and builds its index
            led.states(picked[:workers], executor="process", workers=workers)
            r.put(f"process{workers}_start_s", time.perf_counter() - t0, "s")
            t0 = time.perf_counter()
            spread = led.states(picked, executor="process", workers=workers)
            t = time.perf_counter() - t0
            identical &= spread == one
            r.put(f"process{workers}_accounts_s", len(picked) / t, "accounts/s")
            r.put(f"process{workers}_slice_tx_s", slice_txs / t, "tx/s")
        ray_s = None
        if p.get("ray", True) and importlib.util.find_spec("ray") is not None:
            ray = RayExecutor(workers=2)
            try:
                t0 = time.perf_counter()
                led.states(picked[:2], executor=ray)  # start Ray and both actors (their index)
                r.put("ray2_start_s", time.perf_counter() - t0, "s")
                t0 = time.perf_counter()
                spread = led.states(picked, executor=ray)
                ray_s = time.perf_counter() - t0
                identical &= spread == one
            finally:
                ray.close()
    finally:
        led.close()
    r.put("accounts", len(picked))
    r.put("slice_txs", slice_txs)
    r.put("one_by_one_accounts_s", len(picked) / t_one, "accounts/s")
    r.put("one_by_one_slice_tx_s", slice_txs / t_one, "tx/s")
    r.put("batch_accounts_s", len(picked) / t_batch, "accounts/s")
    r.put("batch_slice_tx_s", slice_txs / t_batch, "tx/s")
    r.put("batch_over_one_by_one", t_one / t_batch)
    r.put("ray2_accounts_s", None if ray_s is None else len(picked) / ray_s, "accounts/s")
    r.put("ray2_slice_tx_s", None if ray_s is None else slice_txs / ray_s, "tx/s")
    r.put("identical", identical)
    r.notes.append(
        "Worker processes and Ray actors (a local Ray, 2 actors) open read-only handles on this "
        "machine's ledger; pool, Ray and actor start-up are reported apart."
        + ("" if ray_s is not None else " Ray is not installed here: no Ray figure.")
    )
    return r


SCENARIO = Scenario(
    "batch",
    "Batch materialisation: one by one, states(), worker processes, Ray (issue 13)",
    run,
    {
        "tiny": {"mean_block": 200, "txs": 4000, "accounts": 200},
        "quick": {"mean_block": 200, "txs": 50_000, "accounts": 2000},
        "full": {"mean_block": 200, "txs": 200_000, "accounts": 5000},
    },
    METRICS,
)
