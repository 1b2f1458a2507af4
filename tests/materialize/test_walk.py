"""The compiled slice walk against its slow twin and the reference, with multi-cut slices."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import walk
from lazyledger.materialize.index import Cuts
from lazyledger.materialize.reference import replay_chain
from lazyledger.materialize.slice import bounded_slice, compiled_slice, python_closure, stored_rows
from lazyledger.shards import end_of, unpack_position
from lazyledger.workloads import Workload


def _chain(tmp_path: Path, shape: str, seed: int) -> tuple[ll.Ledger, Workload, list[ll.Block]]:
    wl = Workload(shape, n_accounts=30, n_shards=3, seed=seed, zipf_s=1.3)
    led = ll.Ledger.create(tmp_path / f"{shape}-{seed}", wl.genesis())
    blocks = list(wl.blocks(led, 16, 25))
    return led, wl, blocks


def _cuts_of(led: ll.Ledger) -> Callable[[bytes, int], int]:
    """The ledger's checkpoints as the slow twin's ``cut(account, position)``."""
    cuts = led._index()[1].arrays()

    def cut(account: bytes, position: int) -> int:
        k = led._account_id(account)
        at = walk.cut_index(cuts.first, cuts.pos, k, position) if k is not None else 0
        return int(cuts.pos[at - 1]) if at else 0

    return cut


def _accounts(wl: Workload) -> list[bytes]:
    return [k.account for k in wl.keys] + [wl.pool, wl.issuer.account]


@pytest.mark.parametrize("scan", [False, True], ids=["walk", "scan"])
@pytest.mark.parametrize(("shape", "seed"), [("zipf", 1), ("adversarial", 2), ("amm", 3)])
def test_compiled_walk_equals_python_walk_and_states_equal_reference(
    tmp_path: Path, shape: str, seed: int, scan: bool
) -> None:
    """With ``scan``, every closure past its first row is found by the backward pass."""
    led, wl, blocks = _chain(tmp_path, shape, seed)
    rng = random.Random(seed)
    accounts = _accounts(wl)
    refs = [replay_chain(led.genesis, blocks[:h])[0] for h in range(len(blocks) + 1)]
    with led:
        if scan:
            columns, _ = led._index()
            columns.scan_min_rows, columns.scan_ratio = 0, 1 << 40
        led.checkpoint_min_rows = 1
        for _ in range(8):  # a random checkpoint set: states at random heights
            a, h = rng.choice(accounts), rng.randrange(len(blocks) + 1)
            assert led.state(a, h) == refs[h].get(a, ll.AccountState(0, {}))
        led.checkpoint_min_rows = 1 << 62  # from here on, queries write nothing
        for _ in range(60):
            a, h = rng.choice(accounts), rng.randrange(len(blocks) + 1)
            for use in (True, False):
                rows = stored_rows(led.store, led.genesis, h)
                slow = python_closure(rows, {a: end_of(h)}, _cuts_of(led) if use else None)
                assert led.slice(a, h, use_checkpoints=use) == [unpack_position(p) for p in slow]
            assert led.state(a, h) == refs[h].get(a, ll.AccountState(0, {})), (a.hex(), h)
        _, receipts = replay_chain(led.genesis, blocks)
        for block in rng.sample(blocks, 3):
            for _, tx in block.transactions():
                got = led.receipt(tx.id)
                assert (got.applied, got.reason) == receipts[tx.id]


def test_an_account_enters_a_slice_at_several_cuts(tmp_path: Path) -> None:
    """A hub checkpointed mid-chain is read from genesis by an early touch and from the
    checkpoint by a late one; its transactions in between stay out of the slice."""
    hub, x, others = ll.Keypair.from_seed(b"h" * 32), ll.Keypair.from_seed(b"x" * 32), []
    others = [ll.Keypair.from_seed(bytes([i]) * 32) for i in range(1, 6)]
    issuer = ll.Keypair.from_seed(b"i" * 32)
    funded = {k.account: {0: 1000} for k in [hub, x, *others]}
    g = ll.Genesis(
        chain_id="t",
        n_shards=2,
        authorities=[issuer.public_key],
        assets={0: issuer.account},
        balances=funded,
        pools={},
    )
    nonce: dict[bytes, int] = {}

    def pay(src: ll.Keypair, dst: bytes, amount: int) -> ll.Transaction:
        n = nonce.get(src.account, 0)
        nonce[src.account] = n + 1
        return ll.transfer(src, nonce=n, to=dst, asset=0, amount=amount)

    with ll.Ledger.create(tmp_path / "c", g) as led:
        blocks = [
            [pay(x, hub.account, 10)],  # 1: x touches the hub early
            [pay(others[0], hub.account, 5)],  # 2, 3: the hub's own business
            [pay(hub, others[1].account, 7)],
            [pay(others[2], hub.account, 1)],  # 4: before the checkpoint
            [pay(hub, x.account, 3)],  # 5: x touches the hub late
        ]
        for txs in blocks[:4]:
            led.append(led.propose(txs, issuer))
        led.checkpoint_min_rows = 1
        led.state(hub.account)  # checkpoint of the hub at the end of block 4
        led.append(led.propose(blocks[4], issuer))
        got = led.slice(x.account)
        assert [h for h, _, _ in got] == [1, 5]  # blocks 2-4 are cut off by the checkpoint
        assert len(led.slice(x.account, use_checkpoints=False)) == 5
        sl = led._slice({x.account: end_of(5)})
        hub_id = led._account_id(hub.account)
        assert hub_id is not None
        cuts = {int(k) for k in sl.keys if int(k) >> 31 == hub_id}
        assert len(cuts) == 2  # the hub enters at genesis and at its checkpoint
        ref, _ = replay_chain(g, [led.block(h) for h in range(1, 6)])
        for k in [hub, x, *others]:
            assert led.state(k.account) == ref[k.account]
        assert led.state(x.account).balances == {0: 1000 - 10 + 3}


def test_walk_after_appends_and_reopen(tmp_path: Path) -> None:
    """The in-memory index follows appends, and a reopened ledger rebuilds the same one."""
    wl = Workload("uniform", n_accounts=20, n_shards=2, seed=9)
    path = tmp_path / "c"
    with ll.Ledger.create(path, wl.genesis()) as led:
        list(wl.blocks(led, 3, 10))
        first = led.slice(wl.keys[0].account)  # builds the index
        list(wl.blocks(led, 3, 10))  # extends it
        later = {k.account: led.slice(k.account) for k in wl.keys}
        cols, _ = led._index()
        rows, links = cols.rows[: cols.n].copy(), cols.links[: cols.n].copy()
    with ll.Ledger.open(path) as led:
        assert led.slice(wl.keys[0].account, 3) == first
        assert {k.account: led.slice(k.account) for k in wl.keys} == later
        cols, _ = led._index()
        assert np.array_equal(cols.rows[: cols.n], rows)
        assert np.array_equal(cols.links[: cols.n], links)


@pytest.mark.parametrize(
    ("shape", "seed", "private"),
    [("zipf", 4, 0.0), ("adversarial", 5, 0.0), ("amm", 6, 0.0), ("zipf", 7, 0.3)],
)
def test_dense_fallback_equals_the_slice_path_and_the_reference(
    tmp_path: Path, shape: str, seed: int, private: float
) -> None:
    """With the threshold at zero every cold query takes the dense replay (private rows send
    it back to the slice path); states equal the reference, with and without checkpoints."""
    wl = Workload(shape, n_accounts=30, n_shards=3, seed=seed, zipf_s=1.3, private_share=private)
    keyring = ll.Keyring(wl.keys)
    rng = random.Random(seed)
    with ll.Ledger.create(tmp_path / "c", wl.genesis(), keyring=keyring) as led:
        blocks = list(wl.blocks(led, 12, 25))
        refs = [replay_chain(led.genesis, blocks[:h], keyring)[0] for h in range(len(blocks) + 1)]
        led.dense_min_rows, led.dense_fraction = 0, 0.0
        for round_ in range(2):  # the first round's queries write checkpoints, then they cut
            led.checkpoint_min_rows = 1 if round_ == 0 else 1 << 62
            for _ in range(40):
                a, h = rng.choice(_accounts(wl)), rng.randrange(len(blocks) + 1)
                assert led.state(a, h) == refs[h].get(a, ll.AccountState(0, {})), (a.hex(), h)


def test_a_bounded_walk_stops_exactly_past_its_limit(tmp_path: Path) -> None:
    led, wl, blocks = _chain(tmp_path, "zipf", 8)
    with led:
        columns, checkpoints = led._index()
        end = end_of(len(blocks))
        for a in _accounts(wl):
            k = led._account_id(a)
            if k is None:  # (an account the chain never touched)
                continue
            walks = [(k, columns.start(k, columns.count_before(end)), end)]
            full = compiled_slice(columns, walks, checkpoints.arrays())
            at = bounded_slice(columns, walks, checkpoints.arrays(), limit=len(full))
            assert at is not None and np.array_equal(at.positions, full.positions)
            if len(full):
                assert (
                    bounded_slice(columns, walks, checkpoints.arrays(), limit=len(full) - 1) is None
                )


def _random_cuts(rng: random.Random, n_ids: int, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """Random checkpoint arrays sorted by (id, position), at row positions and block ends: each
    account's range (``Cuts.first``) and the positions."""
    picks = {
        (rng.randrange(n_ids), int(rng.choice(positions)) + rng.choice([0, 0, 1]))
        for _ in range(rng.randrange(0, 3 * n_ids))
    }
    pairs = sorted(picks)
    cuts = Cuts(
        np.array([a for a, _ in pairs], np.int64),
        np.array([p for _, p in pairs], np.int64),
        *(np.zeros(0, np.int64),) * 4,
    )
    return cuts.first, cuts.pos


@pytest.mark.parametrize(("shape", "seed"), [("zipf", 11), ("adversarial", 12), ("amm", 13)])
def test_the_backward_pass_equals_the_walk(tmp_path: Path, shape: str, seed: int) -> None:
    """:func:`walk.scan` against :func:`walk.closure` on random needs (several accounts,
    each at its own position) and random checkpoint sets, bounded and not."""
    led, _, blocks = _chain(tmp_path, shape, seed)
    rng = random.Random(seed)
    with led:
        columns, _ = led._index()
        links, n = columns.links[: columns.n], columns.n
        n_ids = len(columns.last)
        for _ in range(150):
            ck_first, ck_pos = _random_cuts(rng, n_ids, columns.pos[:n])
            needs = []
            for _ in range(rng.randrange(1, 5)):
                k, h = rng.randrange(n_ids), rng.randrange(len(blocks) + 1)
                end = end_of(h) if rng.random() < 0.7 else int(rng.choice(columns.pos[:n]))
                needs.append((k, columns.start(k, columns.count_before(end)), end))
            a, g, p = (np.array(c, np.int64) for c in zip(*needs, strict=True))
            full = walk.closure(links, ck_first, ck_pos, a, g, p, -1)
            got = walk.scan(links, ck_first, ck_pos, a, g, p, n_ids, -1)
            assert np.array_equal(got, full)
            if len(full):
                assert np.array_equal(
                    walk.scan(links, ck_first, ck_pos, a, g, p, n_ids, len(full)), full
                )
                cut = walk.scan(links, ck_first, ck_pos, a, g, p, n_ids, len(full) - 1)
                assert cut.tolist() == [-1]
