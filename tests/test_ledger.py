"""Differential tests: lazy materialisation == eager replay == the pure-Python reference."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import SHAPES, Workload


def build(
    tmp_path: Path,
    shape: str,
    n_shards: int,
    seed: int,
    n_blocks: int = 10,
    per_block: int = 30,
    n_accounts: int = 24,
) -> tuple[ll.Ledger, Workload, list[ll.Block]]:
    wl = Workload(
        shape, n_accounts=n_accounts, n_shards=n_shards, seed=seed, cluster_size=4, bridge=0.05
    )
    led = ll.Ledger.create(tmp_path / f"{shape}-{n_shards}-{seed}", wl.genesis())
    blocks = list(wl.blocks(led, n_blocks, per_block))
    return led, wl, blocks


def accounts_of(wl: Workload) -> list[bytes]:
    return [k.account for k in wl.keys] + [wl.pool, wl.issuer.account, b"\x00" * 32]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_shards", [1, 3, 8])
def test_lazy_equals_eager_equals_reference(tmp_path: Path, shape: str, n_shards: int) -> None:
    seed = zlib.crc32(f"{shape}{n_shards}".encode()) % 1000
    led, wl, blocks = build(tmp_path, shape, n_shards, seed)
    rng = random.Random(seed)
    with led:
        for h in [*sorted(rng.sample(range(len(blocks) + 1), 4)), len(blocks)]:
            ref, receipts = replay_chain(led.genesis, blocks[:h])
            eager = led.replay_all(h)
            assert eager == {a: s for a, s in ref.items()}
            for account in rng.sample(accounts_of(wl), 8):
                expected = ref.get(account, ll.AccountState(0, {}))
                assert led.state(account, h) == expected, (shape, h)
        _, receipts = replay_chain(led.genesis, blocks)
        for block in blocks[:3]:
            for section in block.sections:
                for tx in section:
                    r = led.receipt(tx.id)
                    assert (r.applied, r.reason) == receipts[tx.id]


def test_adversarial_outcomes_are_mixed(tmp_path: Path) -> None:
    """The adversarial workload really exercises failures (else the differential test is weak)."""
    led, _, blocks = build(tmp_path, "adversarial", 2, 7)
    with led:
        _, receipts = replay_chain(led.genesis, blocks)
        reasons = {reason for _, reason in receipts.values()}
        assert "" in reasons and "insufficient balance" in reasons
        assert "a balance would exceed MAX" in reasons


def brute_force_slice(
    blocks: list[ll.Block], account: bytes, height: int
) -> list[tuple[int, int, int]]:
    """DESIGN.md's definition, by a backward sweep over the whole chain."""
    txs = [(pos, tx) for b in blocks[:height] for pos, tx in b.transactions()]
    live = {account}
    out = []
    for pos, tx in reversed(txs):
        acc = set(tx.access())
        if acc & live:
            out.append(pos)
            live |= acc
    return sorted(out)


@pytest.mark.parametrize("shape", ["uniform", "clusters", "zipf", "amm"])
def test_slice_is_the_least_closure(tmp_path: Path, shape: str) -> None:
    led, wl, blocks = build(tmp_path, shape, 3, 11, n_blocks=8, per_block=20, n_accounts=40)
    with led:
        for account in accounts_of(wl)[:12]:
            for h in (0, 3, 8):
                got = led.slice(account, h, use_checkpoints=False)
                assert got == brute_force_slice(blocks, account, h)


def test_checkpoints_cut_slices_and_change_nothing(tmp_path: Path) -> None:
    led, wl, blocks = build(tmp_path, "clusters", 4, 5, n_blocks=12, per_block=30)
    with led:
        led.checkpoint_min_rows = 1
        rng = random.Random(3)
        accounts = accounts_of(wl)
        queries = [(rng.choice(accounts), rng.randrange(len(blocks) + 1)) for _ in range(150)]
        for account, h in queries:  # random order: later queries cut at earlier checkpoints
            ref, _ = replay_chain(led.genesis, blocks[:h])
            assert led.state(account, h) == ref.get(account, ll.AccountState(0, {}))
        account = wl.keys[0].account
        full = led.slice(account, use_checkpoints=False)
        led.state(account)
        assert led.slice(account) == []  # the checkpoint at the head answers alone
        assert full  # and without it there was work to do


def test_state_of_unknown_account_and_heights(ledger: ll.Ledger, keys: list[ll.Keypair]) -> None:
    assert ledger.state(b"\x09" * 32) == ll.AccountState(0, {})
    assert ledger.state(keys[0].account) == ll.AccountState(0, {0: 1000})
    with pytest.raises(ll.HeightOutOfRange):
        ledger.state(keys[0].account, 1)
    with pytest.raises(ll.HeightOutOfRange):
        ledger.state(keys[0].account, -1)
    with pytest.raises(ll.NotFound):
        ledger.receipt(b"\x01" * 32)


def test_semantics_by_example(ledger: ll.Ledger, keys: list[ll.Keypair]) -> None:
    a, b, c, _ = keys
    pool = b"\x77" * 32
    txs = [
        ll.transfer(a, nonce=0, to=c.account, asset=0, amount=600),
        ll.transfer(a, nonce=1, to=c.account, asset=0, amount=600),  # overdraft: fails
        ll.transfer(c, nonce=0, to=c.account, asset=0, amount=1),  # self: applies, no change
        ll.mint(b, nonce=0, to=c.account, asset=1, amount=ll.MAX),
        ll.mint(b, nonce=1, to=c.account, asset=1, amount=1),  # past MAX: fails
        ll.swap(a, nonce=2, pool=pool, asset_in=0, amount_in=100, min_out=1),
    ]
    ledger.append(ledger.propose(txs, a))
    ref, _receipts = replay_chain(ledger.genesis, [ledger.block(1)])
    assert ledger.state(a.account).nonce == 3
    assert ledger.state(c.account).balances == ref[c.account].balances
    assert not ledger.receipt(txs[1].id).applied
    assert ledger.receipt(txs[4].id).reason == "a balance would exceed MAX"
    out = (100 * 997 * 10**6) // (10**6 * 1000 + 100 * 997)
    assert ledger.state(a.account).balances == {0: 1000 - 600 - 100, 1: out}
    assert ledger.state(pool).balances == {0: 10**6 + 100, 1: 10**6 - out}
    assert ledger.replay_all() == ref


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    led, wl, blocks = build(tmp_path, "uniform", 3, 2, n_blocks=4)
    path = led.store.path
    before = led.replay_all()
    led.close()
    with ll.Ledger.open(path) as again:
        assert again.height == 4 and again.head_id == blocks[-1].id
        assert again.replay_all() == before
        assert [again.block(h) for h in range(1, 5)] == blocks
        # appending continues from the stored nonces
        again.append(again.propose(wl.transactions(5), wl.issuer))
        assert again.height == 5


@pytest.mark.parametrize(
    "call",
    [
        lambda led: led.state(b"short"),
        lambda led: led.state("not bytes"),
        lambda led: led.slice(b"x" * 33),
        lambda led: led.cost(b""),
        lambda led: led.nonce(b"\x01"),
        lambda led: led.receipt(b"zz"),
        lambda led: led.get_blob(b"q"),
        lambda led: led.state(b"\x01" * 32, height="1"),
    ],
)
def test_malformed_queries_get_typed_errors(ledger: ll.Ledger, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ll.LedgerError):
        call(ledger)


def test_unusable_paths_are_storage_errors(tmp_path: Path, genesis: ll.Genesis) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ll.StorageError, match="cannot create"):
        ll.Ledger.create(tmp_path / "file" / "chain", genesis)
    with ll.Ledger.create(tmp_path / "ok", genesis) as led:  # the failed create left no lock
        assert led.height == 0
