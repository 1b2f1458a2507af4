"""Checkpoint policies and batch materialisation: cheaper slices, identical results."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.bench.measure import checkpoint_count
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import Workload


def _blocks(path: Path, shape: str, seed: int, n: int = 24) -> tuple[Workload, list[ll.Block]]:
    wl = Workload(shape, n_accounts=40, n_shards=3, seed=seed, zipf_s=1.4)
    with ll.Ledger.create(path / f"scratch-{shape}-{seed}", wl.genesis()) as scratch:
        return wl, list(wl.blocks(scratch, n, 12))


@pytest.fixture(params=[("zipf", 1), ("adversarial", 2), ("amm", 3)])
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workload, list[ll.Block]]:
    shape, seed = request.param
    return _blocks(tmp_path_factory.mktemp("chains"), shape, seed)


@pytest.mark.parametrize(
    "policy", [ll.CheckpointPolicy.hubs(top=3, every=4), ll.CheckpointPolicy.epochs(every=5)]
)
def test_policies_cut_slices_and_change_nothing(
    tmp_path: Path, chain: tuple[Workload, list[ll.Block]], policy: ll.CheckpointPolicy
) -> None:
    wl, blocks = chain
    accounts = [k.account for k in wl.keys] + [wl.pool, wl.issuer.account]
    live = ll.Ledger.create(tmp_path / "live", wl.genesis(), checkpoint_policy=policy)
    later = ll.Ledger.create(tmp_path / "later", wl.genesis())
    with live, later:
        for b in blocks:
            live.append(b)
            later.append(b)
        later.checkpoint_min_rows = live.checkpoint_min_rows = 1 << 62
        before = sum(len(later.slice(a)) for a in accounts)
        written = later.run_checkpoint_policy(policy)
        assert written == checkpoint_count(later) == checkpoint_count(live) > 0
        assert sum(len(later.slice(a)) for a in accounts) < before
        rng = random.Random(5)
        for h in [len(blocks), *rng.sample(range(len(blocks)), 5)]:
            ref, _ = replay_chain(live.genesis, blocks[:h])
            for a in accounts:
                expected = ref.get(a, ll.AccountState(0, {}))
                assert live.state(a, h) == later.state(a, h) == expected
                assert live.slice(a, h) == later.slice(a, h)
            assert live.states(accounts, h) == {a: live.state(a, h) for a in accounts}


def test_policy_skips_private_and_dnn_slices(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=40, n_shards=2, seed=4, private_share=0.08)
    policy = ll.CheckpointPolicy.epochs(every=2)
    with ll.Ledger.create(tmp_path / "c", wl.genesis(), checkpoint_policy=policy) as led:
        blocks = list(wl.blocks(led, 10, 10))
        cols, checkpoints = led._index()
        cuts = checkpoints.arrays()
        assert len(cuts)
        names = {
            int(k): bytes(a)
            for k, a in zip(cols.rows["id0"][: cols.n], cols.rows["acc0"][: cols.n], strict=True)
        }
        names |= {
            int(k): bytes(a)
            for k, a in zip(cols.rows["id1"][: cols.n], cols.rows["acc1"][: cols.n], strict=True)
        }
        for k, end in zip(cuts.ids.tolist(), cuts.pos.tolist(), strict=True):
            # no checkpoint sits on a state whose slice holds a private transaction
            positions = led.slice(names[k], (end >> 32) - 1, use_checkpoints=False)
            kinds = {led.block(p[0]).sections[p[1]][p[2]].call.OP for p in positions}
            assert ll.Private.OP not in kinds
        assert any(isinstance(tx.call, ll.Private) for b in blocks for _, tx in b.transactions())


def test_background_policy_and_batch_states(tmp_path: Path) -> None:
    wl, blocks = _blocks(tmp_path, "zipf", 8, 12)
    accounts = [k.account for k in wl.keys]
    policy = ll.CheckpointPolicy.hubs(top=2, every=3)
    with ll.Ledger.create(
        tmp_path / "c", wl.genesis(), checkpoint_policy=policy, checkpoint_background=True
    ) as led:
        for b in blocks:
            led.append(b)
        led.wait_checkpoints()
        assert checkpoint_count(led) == 2 * (len(blocks) // 3)
        ref, _ = replay_chain(led.genesis, blocks)
        got = led.states([*accounts, b"\x07" * 32])
        assert got == {a: ref.get(a, ll.AccountState(0, {})) for a in [*accounts, b"\x07" * 32]}


def test_bad_policies_and_executors_are_typed_errors(tmp_path: Path) -> None:
    for bad in (
        lambda: ll.CheckpointPolicy.hubs(top=0),
        lambda: ll.CheckpointPolicy.epochs(every=0),
        lambda: ll.CheckpointPolicy("daily", 3),
        lambda: ll.CheckpointPolicy.epochs(every=2.5),  # type: ignore[arg-type]
    ):
        with pytest.raises(ll.InvalidRequest):
            bad()
    wl = Workload("uniform", n_accounts=4, n_shards=1, seed=1)
    with ll.Ledger.create(tmp_path / "c", wl.genesis()) as led:
        with pytest.raises(ll.InvalidRequest):
            led.states([wl.keys[0].account], executor="cluster")
        with pytest.raises(ll.InvalidRequest):
            led.run_checkpoint_policy()  # the ledger has none
        with pytest.raises(ll.InvalidRequest):
            led.states([b"short"])


def test_pick_matches_a_plain_count() -> None:
    """epochs: every id in the window once, sorted; hubs: the most touched first, ties to the
    lower id."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        ids = rng.integers(-1, 60, size=(int(rng.integers(0, 40)), 2))
        flat = ids[ids >= 0]
        got = ll.CheckpointPolicy.epochs(5).pick(ids)
        assert got.tolist() == sorted(set(flat.tolist()))
        counts = {int(a): int((flat == a).sum()) for a in set(flat.tolist())}
        top = sorted(counts, key=lambda a: (-counts[a], a))[:3]
        assert ll.CheckpointPolicy.hubs(3, 5).pick(ids).tolist() == sorted(top)
