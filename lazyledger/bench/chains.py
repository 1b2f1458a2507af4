"""Chains for the benchmarks: seeded transaction streams and ledgers built from them.

Signing and block proposal happen here, outside every timed region; scenarios time only what
they measure (appending block bytes, querying, replaying)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from lazyledger.bench.model import Context, Params
from lazyledger.bench.timing import progress
from lazyledger.crypto import Keypair
from lazyledger.ledger import Ledger
from lazyledger.model import Genesis, Transaction
from lazyledger.transactions import transfer
from lazyledger.workloads import EthereumLike, EthereumShape, TraceWorkload, Workload

CLUSTERS = {"shards": 4, "cluster_size": 10}
"""The clustered chains' shape, shared by the scenarios that build them."""


class ClusterStream:
    """Transfers inside clusters of ``cluster_size`` accounts of a ``clusters`` workload, with
    the share of traffic each cluster gets under the caller's control (bridge = 0: a cluster's
    slice is exactly its own transactions)."""

    def __init__(self, wl: Workload, seed: int) -> None:
        self.wl = wl
        self.rng = random.Random(seed)
        self.nonces: dict[bytes, int] = {}
        self.n_clusters = wl.n_accounts // wl.cluster_size

    def members(self, cluster: int) -> list[Keypair]:
        cs = self.wl.cluster_size
        return self.wl.keys[cluster * cs : (cluster + 1) * cs]

    def tx(self, cluster: int) -> Transaction:
        """One signed transfer between two distinct members of ``cluster``."""
        rng = self.rng
        group = self.members(cluster)
        i = rng.randrange(len(group))
        j = (i + 1 + rng.randrange(len(group) - 1)) % len(group)
        kp = group[i]
        n = self.nonces.get(kp.account, 0)
        self.nonces[kp.account] = n + 1
        return transfer(
            kp,
            nonce=n,
            to=group[j].account,
            asset=rng.randrange(2),
            amount=rng.randrange(1, 2_000),
            chain_id=self.wl.chain_id,
        )

    def txs(self, clusters: Sequence[int], desc: str, on: bool) -> list[Transaction]:
        return [self.tx(c) for c in progress(clusters, desc, len(clusters), on)]


def interleave(
    background: Sequence[Transaction], watched: Sequence[Transaction]
) -> list[Transaction]:
    """``background`` with ``watched`` spread evenly through it (first one at the start)."""
    total = len(background) + len(watched)
    at = {round(k * total / len(watched)) for k in range(len(watched))} if watched else set()
    bg, w = iter(background), iter(watched)
    out = [next(w) if i in at else next(bg) for i in range(total)]
    return out


def build(
    path: Path,
    genesis: Genesis,
    txs: Sequence[Transaction],
    per_block: int,
    proposer: Keypair,
    *,
    desc: str = "build chain",
    on: bool = True,
    workers: int | None = None,
) -> tuple[Ledger, list[bytes]]:
    """A ledger holding ``txs`` in blocks of ``per_block``, and the canonical bytes of its
    blocks (to replay ingestion elsewhere). The caller closes the ledger."""
    led = Ledger.create(path, genesis, workers=workers)
    blocks: list[bytes] = []
    starts = range(0, len(txs), per_block)
    for lo in progress(starts, desc, len(starts), on):
        block = led.propose(txs[lo : lo + per_block], proposer)
        led.append(block)
        blocks.append(block.to_bytes())
    return led, blocks


def workload_blocks(
    path: Path, wl: Workload, n_blocks: int, per_block: int, *, desc: str, on: bool
) -> list[bytes]:
    """Bytes of ``n_blocks`` signed blocks of workload ``wl`` (built on a scratch ledger)."""
    led = Ledger.create(path, wl.genesis())
    try:
        return [
            b.to_bytes() for b in progress(wl.blocks(led, n_blocks, per_block), desc, n_blocks, on)
        ]
    finally:
        led.close()


def uniform_blocks(ctx: Context, p: Params) -> tuple[Genesis, list[bytes]]:
    """Genesis and signed block bytes of the uniform workload sized by ``p`` (accounts, shards,
    blocks, per_block), built once per run and shared by the scenarios that ask for it."""
    key = ("uniform", p["accounts"], p["shards"], p["blocks"], p["per_block"], ctx.settings.seed)
    if key not in ctx.blocks_cache:
        wl = Workload(
            "uniform", n_accounts=p["accounts"], n_shards=p["shards"], seed=ctx.settings.seed
        )
        blocks = workload_blocks(
            ctx.path("sign-uniform"), wl, p["blocks"], p["per_block"], desc="sign blocks", on=ctx.on
        )
        ctx.blocks_cache[key] = (wl.genesis(), blocks)
    return ctx.blocks_cache[key]


@attrs.frozen
class EthereumChain:
    """An Ethereum-like chain stored in a ledger (the caller closes ``ledger``)."""

    ledger: Ledger
    genesis: Genesis
    workload: EthereumLike | TraceWorkload
    accounts: list[bytes]
    """Every account a transaction of the chain touches, sorted."""
    seconds: float
    """Wall-clock time of the build: picking, signing, proposing and appending."""


def ethereum_chain(
    path: Path,
    n_txs: int,
    *,
    seed: int = 0,
    n_shards: int = 4,
    shape: EthereumShape | None = None,
    workers: int | None = None,
    desc: str = "build ethereum-like chain",
    on: bool = True,
) -> EthereumChain:
    """Create a ledger at ``path`` holding ``n_txs`` transfers of :class:`EthereumLike` (one
    block per generated block, proposed and appended one at a time)."""
    wl = EthereumLike(seed=seed, n_shards=n_shards, shape=shape or EthereumShape())
    expected = math.ceil(n_txs / wl.shape.mean_block)
    return _build(path, wl, wl.blocks(n_txs), expected, workers, desc, on)


def trace_chain(
    path: Path,
    trace: str | Path,
    *,
    n_shards: int = 4,
    workers: int | None = None,
    desc: str = "replay a trace",
    on: bool = True,
) -> EthereumChain:
    """Create a ledger at ``path`` holding the transfers of a CSV trace
    (:class:`lazyledger.workloads.TraceWorkload`), one block per trace block."""
    wl = TraceWorkload(trace, n_shards=n_shards)
    return _build(path, wl, wl.blocks(), None, workers, desc, on)


def _build(
    path: Path,
    wl: EthereumLike | TraceWorkload,
    blocks: Iterable[list[Transaction]],
    expected: int | None,
    workers: int | None,
    desc: str,
    on: bool,
) -> EthereumChain:
    t0 = time.perf_counter()
    genesis = wl.genesis()
    led = Ledger.create(path, genesis, workers=workers)
    accounts: set[bytes] = set()
    try:
        for txs in progress(blocks, desc, expected, on):
            led.append(led.propose(txs, wl.proposer))
            accounts.update(a for tx in txs for a in tx.access())
    except BaseException:
        led.close()
        raise
    return EthereumChain(led, genesis, wl, sorted(accounts), time.perf_counter() - t0)
