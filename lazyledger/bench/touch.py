"""The touch commitment's costs (issue 10): ingestion time with and without maintaining and
checking ``touch_root`` (both in one run, interleaved), the time to rebuild the map from the
stored blocks on open, and the size and check time of prefix proofs over 10**6 accounts.

The "without" ledger differs only in its touch map: a null map whose root is always 32 zero
bytes, fed the same sections under headers re-signed with that root. It exists for this
measurement only (a bench class, never a ledger option)."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from lazyledger import touches
from lazyledger.bench import chains
from lazyledger.crypto import Keypair
from lazyledger.ledger import Ledger
from lazyledger.model import Block, Transaction
from lazyledger.touches import TouchMap, TouchStage
from lazyledger.workloads import EthereumShape

NULL_ROOT = bytes(32)


class _NullStage(TouchStage):
    def add_block(
        self, height: int, sections: Sequence[Sequence[Transaction]], *, root: bool = True
    ) -> bytes:
        return NULL_ROOT

    def commit(self) -> None:
        pass


class _NullMap(TouchMap):
    def stage(self) -> TouchStage:
        return _NullStage(self)


class BareLedger(Ledger):
    """A ledger that neither maintains nor checks the touch commitment (bench only)."""

    def _touch_map(self) -> TouchMap:
        if self._touches is None:
            self._touches = _NullMap()
        return self._touches


def _resigned(blocks: Sequence[bytes], proposer: Keypair) -> list[bytes]:
    out = []
    parent = None
    for raw in blocks:
        b = Block.from_bytes(raw)
        h = attrs.evolve(b.header, touch_root=NULL_ROOT, parent=parent or b.header.parent)
        h = attrs.evolve(h, signature=proposer.sign(h.body))
        out.append(Block(h, b.sections).to_bytes())
        parent = h.id
    return out


def _append_all(led: Ledger, blocks: Sequence[bytes]) -> float:
    t0 = time.perf_counter()
    for raw in blocks:
        led.append(raw)
    return time.perf_counter() - t0


def ingestion_overhead(
    work: Path, n_txs: int, mean_block: int, rounds: int = 3, seed: int = 0
) -> dict[str, Any]:
    """tx/s appending the same pre-signed Ethereum-like blocks (one durable commit per block)
    with and without the touch commitment, alternating ``rounds`` times; the overhead is the
    ratio of the median times. "warm tree" is the same with the bucket tree's kernels loaded
    before the clock runs (until they are, a process hashes the tree with the plain-Python
    twin: a cost per process, not per transaction; the first round pays it)."""
    src = chains.ethereum_chain(
        work / f"src-{mean_block}",
        n_txs,
        seed=seed,
        shape=EthereumShape(mean_block=mean_block),
        on=False,
    )
    try:
        with_blocks = [b.to_bytes() for b in src.ledger.blocks()]
        genesis = src.genesis
    finally:
        src.ledger.close()
    without_blocks = _resigned(with_blocks, src.workload.proposer)
    t_with: list[float] = []
    t_warm: list[float] = []
    t_without: list[float] = []
    reopen: list[float] = []
    for r in range(rounds):
        with BareLedger.create(work / f"bare-{mean_block}-{r}", genesis) as led:
            t_without.append(_append_all(led, without_blocks))
        with Ledger.create(work / f"warm-{mean_block}-{r}", genesis) as led:
            led._touch_map().bucket_tree.load()  # the kernels loaded first
            t_warm.append(_append_all(led, with_blocks))
        path = work / f"touch-{mean_block}-{r}"
        with Ledger.create(path, genesis) as led:
            t_with.append(_append_all(led, with_blocks))
        with Ledger.open(path) as led:
            t0 = time.perf_counter()
            led.touch_proofs({}, led.height)  # builds the map from the stored blocks
            reopen.append(time.perf_counter() - t0)
    w, wo = statistics.median(t_with), statistics.median(t_without)
    warm = statistics.median(t_warm)
    return {
        "txs": n_txs,
        "mean_block": mean_block,
        "blocks": len(with_blocks),
        "tx_s_with": round(n_txs / w),
        "tx_s_without": round(n_txs / wo),
        "overhead_percent": round(100 * (w / wo - 1), 1),
        "overhead_percent_warm_tree": round(100 * (warm / wo - 1), 1),
        "seconds_with": [round(x, 3) for x in t_with],
        "seconds_without": [round(x, 3) for x in t_without],
        "seconds_warm_tree": [round(x, 3) for x in t_warm],
        "rebuild_on_open_s": round(statistics.median(reopen), 3),
    }


class _Touching:
    """A stand-in transaction for building a big map directly: only its access set."""

    __slots__ = ("_access",)

    def __init__(self, access: tuple[bytes, ...]) -> None:
        self._access = access

    def access(self) -> tuple[bytes, ...]:
        return self._access


def _proof_bytes(p: dict[str, Any]) -> int:
    """Binary size of a prefix proof (its compact form before base64, ``encode_proof``)."""
    return 11 + 32 * len(p["right"]) + 72 * len(p["bucket"]) + 32 * len(p["path"])


def proof_sizes(
    n_accounts: int, n_txs: int, per_block: int = 1000, sample: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Build the map directly over ``n_accounts`` accounts touched by ``n_txs`` two-account
    transactions (one in ten pays one of 100 hubs) in one stage, the way a ledger rebuilds it
    from stored blocks (entries and bucket tree brought up to date once, at commit), then
    prove random prefixes of random accounts and check them; sizes in bytes as binary and as
    the node serves them (JSON with the proof in base64)."""
    rng = random.Random(seed)
    accounts = [rng.randbytes(32) for _ in range(n_accounts)]
    hubs = accounts[:100]
    tm = TouchMap()
    stage = tm.stage()
    t0 = time.perf_counter()
    order = list(range(n_accounts))
    rng.shuffle(order)
    made = 0
    height = 0
    while made < n_txs:
        height += 1
        section = []
        for _ in range(min(per_block, n_txs - made)):
            # every account is touched at least once; afterwards random pairs and hubs
            a = accounts[order[made]] if made < n_accounts else rng.choice(accounts)
            b = rng.choice(hubs) if rng.random() < 0.1 else rng.choice(accounts)
            section.append(_Touching((a, b)))
            made += 1
        stage.add_block(height, [section], root=False)  # type: ignore[list-item]
    stage.commit()
    build_s = time.perf_counter() - t0
    sizes: list[int] = []
    json_sizes: list[int] = []
    check_s: list[float] = []
    picks = [rng.choice(accounts) for _ in range(sample - 10)] + hubs[:10]
    for a in picks:
        positions = list(tm.positions[a])
        k = rng.randrange(1, len(positions) + 1)
        p = tm.prove(a, k)
        sizes.append(_proof_bytes(p))
        served = {"account": p["account"], "proof": touches.encode_proof(p)}  # as the node does
        json_sizes.append(len(json.dumps(served)))
        others = [(bytes.fromhex(x), n, bytes.fromhex(r)) for x, n, r in p["bucket"]]
        right = [bytes.fromhex(r) for r in p["right"]]
        path = [bytes.fromhex(h) for h in p["path"]]
        t1 = time.perf_counter()
        problem = touches.check_account(
            tm.root, a, positions[:k], len(positions), right, others, path
        )
        check_s.append(time.perf_counter() - t1)
        if problem is not None:
            raise AssertionError(problem)
    sizes.sort()
    json_sizes.sort()
    return {
        "accounts": n_accounts,
        "txs": n_txs,
        "build_s": round(build_s, 2),
        "proofs": len(sizes),
        "bytes_median": sizes[len(sizes) // 2],
        "bytes_p99": sizes[int(len(sizes) * 0.99)],
        "bytes_max": sizes[-1],
        "hub_bytes_max": max(_proof_bytes(tm.prove(h, len(tm.positions[h]) // 2)) for h in hubs),
        "json_bytes_median": json_sizes[len(json_sizes) // 2],
        "json_bytes_max": json_sizes[-1],
        "check_us_median": round(1e6 * statistics.median(check_s), 1),
        "max_touches": max(len(tm.positions[h]) for h in hubs),
    }
