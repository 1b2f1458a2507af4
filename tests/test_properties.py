"""Property-based differential test: for any small chain of transfers, mints and swaps (edge
amounts included), lazy materialisation, the eager replay and the pure-Python reference agree."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain

KEYS = [ll.Keypair.from_seed(bytes([0x60 + i]) * 32) for i in range(4)]
ISSUER = KEYS[0]
POOL = b"\x5a" * 32
EDGE = st.sampled_from([1, 2, 5, 6, 997, 999, 1000, 1001, 10**6, 2**62, ll.MAX - 1, ll.MAX])
AMOUNT = st.one_of(EDGE, st.integers(1, 2_000))

call = st.one_of(
    st.tuples(st.just("transfer"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 1), AMOUNT),
    st.tuples(st.just("mint"), st.just(0), st.integers(0, 3), st.integers(0, 1), AMOUNT),
    st.tuples(st.just("swap"), st.integers(0, 3), st.just(-1), st.integers(0, 1), AMOUNT),
)


def build(
    ops: list[tuple[str, int, int, int, int]], n_shards: int, cut: int
) -> tuple[ll.Genesis, list[ll.Transaction]]:
    genesis = ll.Genesis(
        "prop",
        n_shards,
        [ISSUER.public_key],
        {0: ISSUER.account, 1: ISSUER.account},
        {  # balances at the MAX edge make overflow boundaries likely
            KEYS[0].account: {0: 5_000, 1: 5_000},
            KEYS[1].account: {0: ll.MAX - 1_000, 1: 10},
            KEYS[2].account: {0: 1_000, 1: ll.MAX - 5},
            POOL: {0: 10**6, 1: 10**6},
        },
        {POOL: (0, 1)},
    )
    nonces = [0] * len(KEYS)
    txs = []
    for kind, s, t, asset, amount in ops:
        kp = KEYS[s]
        if kind == "transfer":
            tx = ll.transfer(kp, nonce=nonces[s], to=KEYS[t].account, asset=asset, amount=amount)
        elif kind == "mint":
            tx = ll.mint(kp, nonce=nonces[s], to=KEYS[t].account, asset=asset, amount=amount)
        else:
            tx = ll.swap(
                kp, nonce=nonces[s], pool=POOL, asset_in=asset, amount_in=amount, min_out=cut
            )
        nonces[s] += 1
        txs.append(tx)
    return genesis, txs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(call, min_size=1, max_size=24),
    n_shards=st.integers(1, 3),
    per_block=st.integers(1, 8),
    min_out=st.sampled_from([0, 1, 500]),
    query_order=st.permutations(range(len(KEYS) + 1)),
)
def test_lazy_eager_reference_agree(
    ops: list[tuple[str, int, int, int, int]],
    n_shards: int,
    per_block: int,
    min_out: int,
    query_order: list[int],
) -> None:
    genesis, txs = build(ops, n_shards, min_out)
    with tempfile.TemporaryDirectory() as tmp, ll.Ledger.create(Path(tmp) / "c", genesis) as led:
        led.checkpoint_min_rows = 1  # checkpoints from earlier queries must change nothing
        blocks = []
        for k in range(0, len(txs), per_block):
            block = led.propose(txs[k : k + per_block], ISSUER)
            led.append(block)
            blocks.append(block)
        ref, receipts = replay_chain(genesis, blocks)
        accounts = [k.account for k in KEYS] + [POOL]
        for h in (len(blocks), max(0, len(blocks) - 1)):
            ref_h, _ = replay_chain(genesis, blocks[:h])
            expected = {a: ref_h.get(a, ll.AccountState(0, {})) for a in accounts}
            assert led.states(accounts, h) == expected  # cut at checkpoints of earlier queries
            for i in query_order:
                assert led.state(accounts[i], h) == expected[accounts[i]]
            assert led.states([accounts[i] for i in query_order], h) == expected
        assert led.replay_all() == ref  # KEYS[3] starts empty: it appears once touched
        for t in txs:
            r = led.receipt(t.id)
            assert (r.applied, r.reason) == receipts[t.id]
