"""Workload generators: determinism, O(1) picks, the Ethereum-like chain's calibration against
the real 2017 window, block sizes, and validity of the chains on a real ledger."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

import lazyledger as ll
from lazyledger.bench.chains import ethereum_chain
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import (
    ETHEREUM_2017,
    ZERO_VALUE,
    ChainStats,
    EthereumLike,
    EthereumShape,
    TraceWorkload,
    Workload,
    chain_stats,
    global_order,
    head_slice_sizes,
    ledger_stats,
    sample_accounts,
    slice_fractions,
    transfer_stats,
)


def _flat(blocks: Sequence[Sequence[Any]]) -> list[Any]:
    return [x for b in blocks for x in b]


# -- the zipf shape -----------------------------------------------------------------------------


def test_zipf_picks_bisect_precomputed_cumulative_weights() -> None:
    """Zipf picks use cumulative weights built once (no O(accounts) work a pick), and pick
    exactly what ``choices(range(n), weights)`` picked before, so chains are unchanged."""
    n = 500
    wl = Workload("zipf", n_accounts=n, seed=5)
    assert len(wl._cum_weights) == n
    weights = [1.0 / (i + 1) ** wl.zipf_s for i in range(n)]
    ref = random.Random(5)
    calls: list[dict[str, Any]] = []
    choices = wl.rng.choices

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return choices(*args, **kwargs)

    wl.rng.choices = spy  # type: ignore[method-assign]
    for _ in range(2000):
        assert wl._pick() == ref.choices(range(n), weights)[0]
    assert all(c.keys() == {"cum_weights"} and c["cum_weights"] is wl._cum_weights for c in calls)


# -- Ethereum-like: determinism and cost ---------------------------------------------------------


def test_ethereum_same_seed_same_bytes() -> None:
    def raw(seed: int) -> list[bytes]:
        return [tx.to_bytes() for txs in EthereumLike(seed=seed).blocks(1500) for tx in txs]

    first = raw(3)
    assert first == raw(3)
    assert len(first) == 1500
    assert first != raw(4)


def test_ethereum_signed_blocks_follow_the_picks() -> None:
    picks = EthereumLike(seed=2).picks(800)
    wl = EthereumLike(seed=2)
    blocks = list(wl.blocks(800))
    assert [len(b) for b in blocks] == [len(b) for b in picks]
    nonces: dict[int, int] = {}
    for (sender, to, amount), tx in zip(_flat(picks), _flat(blocks), strict=True):
        assert tx.sender == wl.account(sender)
        assert isinstance(tx.call, ll.Transfer)
        assert (tx.call.to, tx.call.amount, tx.call.asset) == (wl.account(to), amount, 0)
        assert tx.nonce == nonces.get(sender, 0)
        nonces[sender] = tx.nonce + 1


class _CountingRandom(random.Random):
    """Counts ``random()`` draws; fails on any draw whose cost grows with a population."""

    draws = 0

    def random(self) -> float:
        self.draws += 1
        return super().random()

    def choices(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("choices() in the pick path")

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sample() in the pick path")

    def shuffle(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("shuffle() in the pick path")


@pytest.mark.parametrize("population", [100, 100_000])
def test_ethereum_picks_are_constant_work(population: int) -> None:
    """Samplers are built once, with one entry per rank; a pick takes a bounded number of
    random draws and bisects, whatever the number of accounts (structure, not timing)."""
    shape = EthereumShape(funded_users=population, contracts=population)
    wl = EthereumLike(seed=1, shape=shape)
    assert len(wl._user_cum) == population
    assert len(wl._contract_cum) == population
    assert len(wl._exchange_cum) == shape.exchanges
    counting = _CountingRandom(7)
    wl._rng = counting
    n = 200_000
    blocks = wl.picks(n)
    assert sum(map(len, blocks)) == n
    assert counting.draws <= 8 * n
    assert wl.n_accounts > wl.first_new  # the account set grew during the chain


# -- Ethereum-like: calibration and shape --------------------------------------------------------


def _relative(got: float, want: float) -> float:
    return abs(got - want) / want


def _assert_calibrated(stats: ChainStats, tolerance: float = 0.25) -> None:
    real = ETHEREUM_2017
    per_tx = stats.txs / real.txs
    for name in ("accounts", "senders", "recipients"):
        got, want = getattr(stats, name), getattr(real, name)
        assert _relative(got / per_tx, want) <= tolerance, (name, got, want)
    for name in (
        "top_sender_share",
        "top5_sender_share",
        "top_recipient_share",
        "zero_value_share",
    ):
        got, want = getattr(stats, name), getattr(real, name)
        assert _relative(got, want) <= tolerance, (name, got, want)
    for name in ("slice_p50", "slice_p90"):
        got, want = getattr(stats, name), getattr(real, name)
        assert abs(got - want) <= 0.1, (name, got, want)
    assert stats.slice_p10 is not None and stats.slice_p10 <= 0.02


def test_ethereum_calibrated_at_20k_signed() -> None:
    """Default parameters, 20,000 signed transfers in the order a 4-shard ledger gives them:
    every count and share within 25% of the real window, slice p50/p90 within 0.1."""
    wl = EthereumLike(seed=0)
    txs = global_order(wl.blocks(20_000), wl.n_shards)
    stats = chain_stats(txs)
    assert stats.txs == 20_000
    _assert_calibrated(stats)
    assert sum(isinstance(tx.call, ll.Transfer) and tx.call.amount == 0 for tx in txs) == 0


def _pick_stats(seed: int, n: int, sample: int | None = None) -> ChainStats:
    picks = _flat(EthereumLike(seed=seed).picks(n))
    accesses: list[tuple[Hashable, ...]] = [(s,) if s == t else (s, t) for s, t, _ in picks]
    accounts = sorted({a for acc in accesses for a in acc})
    queries = random.Random(seed).sample(accounts, sample) if sample else accounts
    sizes = sorted(k / n for k in head_slice_sizes(accesses, queries))
    q = [sizes[int(p * (len(sizes) - 1))] for p in (0.1, 0.5, 0.9)]
    return attrs.evolve(transfer_stats(picks), slice_p10=q[0], slice_p50=q[1], slice_p90=q[2])


@pytest.mark.parametrize("seed", [1, 2])
def test_ethereum_calibrated_at_20k_other_seeds(seed: int) -> None:
    """The calibration is no lucky seed (unsigned picks, generation order)."""
    _assert_calibrated(_pick_stats(seed, 20_000))


def test_ethereum_shape_holds_on_a_longer_chain() -> None:
    """10x longer: the same shares of top senders and recipients, of zero-value txs and of
    one-off accounts; the account set keeps growing with the chain."""
    small, large = _pick_stats(0, 20_000), _pick_stats(0, 200_000, sample=1500)
    for name in (
        "top_sender_share",
        "top5_sender_share",
        "top_recipient_share",
        "zero_value_share",
        "one_off_share",
    ):
        assert _relative(getattr(large, name), getattr(small, name)) <= 0.15, name
    assert large.accounts > 5 * small.accounts
    assert large.slice_p50 is not None and abs(large.slice_p50 - ETHEREUM_2017.slice_p50) <= 0.1


@pytest.mark.parametrize("mean", [15, 200])
def test_ethereum_block_sizes_vary_around_the_mean(mean: int) -> None:
    wl = EthereumLike(seed=0, shape=EthereumShape(mean_block=mean))
    sizes = [wl.block_size() for _ in range(20_000)]
    assert min(sizes) >= 1
    assert abs(sum(sizes) / len(sizes) - mean) <= 0.03 * mean
    assert len(set(sizes)) > 10  # varies, not a constant
    blocks = EthereumLike(seed=0, shape=EthereumShape(mean_block=mean)).picks(30 * mean)
    assert sum(map(len, blocks)) == 30 * mean and all(blocks)


def test_ethereum_block_of_one() -> None:
    wl = EthereumLike(shape=EthereumShape(mean_block=1))
    assert {wl.block_size() for _ in range(100)} == {1}
    with pytest.raises(ValueError, match="mean_block"):
        EthereumLike(shape=EthereumShape(mean_block=0.5))


# -- Ethereum-like: a valid chain on a real ledger ----------------------------------------------


def test_ethereum_chain_on_a_ledger(tmp_path: Path) -> None:
    """Appended to a real ledger, the chain validates; lazy states equal replay_all; every
    transfer applies; slice sizes from one backward pass equal Ledger.slice."""
    chain = ethereum_chain(tmp_path / "eth", 3000, seed=0, on=False)
    led = chain.ledger
    with led:
        wl = chain.workload
        assert led.genesis == chain.genesis
        everyone = led.replay_all()
        assert set(chain.accounts) <= set(everyone)
        hubs = [wl.account(i) for i in range(wl.shape.exchanges + wl.shape.pools)]
        picked = hubs + sample_accounts(chain.accounts, 40, seed=1)
        for account in picked:
            assert led.state(account) == everyone[account]
        stats = ledger_stats(led, sample=60, seed=2)
        assert stats.failed_share == 0.0
        txs = [tx for b in led.blocks() for sec in b.sections for tx in sec]
        assert len(txs) == 3000
        assert sum(isinstance(tx.call, ll.Transfer) and tx.call.amount == ZERO_VALUE for tx in txs)
        fast = chain_stats(txs)
        assert fast.rows()[:9] == stats.rows()[:9]  # counts and shares agree
        by_ledger = slice_fractions(led, picked)
        sizes = head_slice_sizes([tx.access() for tx in txs], picked)
        assert [k / len(txs) for k in sizes] == [by_ledger[a] for a in picked]


# -- aggregates -----------------------------------------------------------------------------


def test_transfer_stats_counts() -> None:
    stats = transfer_stats(
        [("a", "b", 5), ("a", "c", ZERO_VALUE), ("b", "c", 2), ("a", "a", 3), ("d", None, None)]
    )
    assert (stats.txs, stats.accounts, stats.senders, stats.recipients) == (5, 4, 3, 3)
    assert stats.top_sender_share == 3 / 5
    assert stats.top5_sender_share == 1.0
    assert stats.top_recipient_share == 2 / 5
    assert stats.zero_value_share == 1 / 5
    assert stats.one_off_share == 1 / 4  # only d appears in one transaction


def _naive_slice(accesses: Sequence[Sequence[Hashable]], account: Hashable) -> int:
    """The definition, scanned backward: a tx joins if it meets the closure so far."""
    closure, size = {account}, 0
    for access in reversed(accesses):
        if closure.intersection(access):
            closure.update(access)
            size += 1
    return size


@pytest.mark.parametrize("seed", range(5))
def test_head_slice_sizes_match_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    n_accounts = rng.choice([3, 10, 40])
    accesses = [
        tuple(rng.sample(range(n_accounts), rng.choice([1, 2, 2, 2, 3])))
        for _ in range(rng.randrange(0, 300))
    ]
    queries = [*range(n_accounts), n_accounts + 1]  # one account the chain never touches
    assert head_slice_sizes(accesses, queries) == [_naive_slice(accesses, q) for q in queries]
    assert head_slice_sizes(accesses, []) == []


# -- a recorded trace -----------------------------------------------------------------------


def _write_trace(path: Path, picks: list[list[tuple[int, int, int]]], block: bool = True) -> None:
    """A CSV trace of ``picks`` (hex addresses in mixed case, wei-like values, 0 for the
    stand-ins of zero-value transfers)."""
    lines = ["block,from,to,value" if block else "from,to,value"]
    for b, picks_of_block in enumerate(picks):
        for s, t, amount in picks_of_block:
            value = 0 if amount == ZERO_VALUE else amount * 10**15
            row = f"0x{s:040x},0X{t:040X},{value}"
            lines.append(f"{7 + 2 * b},{row}" if block else row)
    path.write_text("\n".join(lines) + "\n")


def test_a_trace_replays_in_order_on_a_ledger(tmp_path: Path) -> None:
    """A trace's rows become signed transfers in its order and blocks; every one applies; lazy
    states (and batches) equal the pure-Python reference; the graph is the trace's."""
    picks = EthereumLike(seed=4).picks(600)
    _write_trace(tmp_path / "t.csv", picks)
    wl = TraceWorkload(tmp_path / "t.csv", n_shards=3)
    assert wl.rows == 600
    blocks = list(wl.blocks())
    assert [len(b) for b in blocks] == [len(p) for p in picks if p]
    with ll.Ledger.create(tmp_path / "led", wl.genesis()) as led:
        stored = []
        for txs in blocks:
            stored.append(led.propose(txs, wl.proposer))
            led.append(stored[-1])
        ref, receipts = replay_chain(led.genesis, stored)
        assert all(applied for applied, _ in receipts.values())
        names = {i for p in picks for s, t, _ in p for i in (s, t)}
        accounts = [wl.account(f"0x{i:040x}") for i in sorted(names)]
        assert {a: led.state(a) for a in accounts} == {a: ref[a] for a in accounts}
        assert led.states(accounts) == {a: ref[a] for a in accounts}
        txs = [tx for b in blocks for tx in b]
        flat = [x for p in picks for x in p]
        assert [(tx.sender, tx.call.to) for tx in txs if isinstance(tx.call, ll.Transfer)] == [
            (wl.account(f"0x{s:040x}"), wl.account(f"0x{t:040x}")) for s, t, _ in flat
        ]
        amounts = [tx.call.amount for tx in txs if isinstance(tx.call, ll.Transfer)]
        zero = [a == ZERO_VALUE for _, _, a in flat]
        assert any(zero) and [a == ZERO_VALUE for a in amounts] == zero


def test_a_trace_without_blocks_is_cut_every_per_block_rows(tmp_path: Path) -> None:
    _write_trace(tmp_path / "t.csv", EthereumLike(seed=5).picks(50), block=False)
    wl = TraceWorkload(tmp_path / "t.csv", per_block=15)
    assert [len(b) for b in wl.blocks()] == [15, 15, 15, 5]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a,b\n1,2\n", "needs columns 'from' and 'to'"),
        ("block,from,to\n2,a,b\n1,b,c\n", ":3: block 1 after block 2"),
        ("from,to,value\na,,1\n", ":2: an empty 'from' or 'to'"),
        ("from,to,value\na,b,-1\n", ":2: a negative value"),
        ("from,to,value\na,b,1.5\n", ":2: 'block' and 'value' must be integers"),
        ("from,to\n\xff", "not a UTF-8 CSV"),
    ],
)
def test_a_bad_trace_is_refused_naming_the_row(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ll.InvalidRequest, match=problem):
        TraceWorkload(path)
    with pytest.raises(ll.InvalidRequest, match="cannot read trace"):
        TraceWorkload(tmp_path / "missing.csv")
    with pytest.raises(ll.InvalidRequest, match="per_block"):
        TraceWorkload(path, per_block=0)
