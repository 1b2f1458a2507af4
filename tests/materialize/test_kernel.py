"""The Numba kernel against the pure-Python semantics, on random and adversarial rows."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

import lazyledger as ll
from lazyledger.materialize import kernel
from lazyledger.materialize.replay import replay_rows
from lazyledger.materialize.rows import ROW_DTYPE, row_of
from lazyledger.ops import MAX, apply, balances_of, swap_output

EDGE = [0, 1, 2, 996, 997, 1000, 2**31, 2**32 - 1, 2**32, 2**62, MAX // 997, MAX // 2, MAX - 1, MAX]
ints = st.one_of(st.sampled_from(EDGE), st.integers(0, MAX), st.integers(0, 10**6))


@settings(max_examples=3000, deadline=None)
@given(a=ints, r_in=ints, r_out=ints)
def test_swap_output_is_exact(a: int, r_in: int, r_out: int) -> None:
    if a == 0 and r_in == 0:
        return  # zero denominator; amounts are >= 1 by validation
    assert kernel.swap_output(a, r_in, r_out) == swap_output(a, r_in, r_out)


def id_assigner() -> Callable[[bytes], int]:
    """Dense account ids in order of first appearance, as ingestion assigns them."""
    known: dict[bytes, int] = {}
    return lambda account: known.setdefault(account, len(known))


KEYS = [ll.Keypair.from_seed(bytes([i + 1]) * 32) for i in range(5)]
POOL = b"\x50" * 32
GENESIS = ll.Genesis(
    "k", 1, [KEYS[0].public_key], {0: KEYS[0].account, 1: KEYS[0].account}, {}, {POOL: (0, 1)}
)


def random_case(rng: random.Random) -> tuple[dict[bytes, dict[int, int]], list[ll.Transaction]]:
    accounts = [k.account for k in KEYS] + [POOL]
    pick = lambda: rng.choice([*EDGE, rng.randrange(0, MAX + 1), rng.randrange(1, 10**4)])  # noqa: E731
    initial = {a: {x: pick() for x in (0, 1) if rng.random() < 0.8} for a in accounts}
    txs = []
    for i in range(rng.randrange(1, 60)):
        kp = rng.choice(KEYS)
        amount = max(1, pick())
        kind = rng.randrange(3)
        if kind == 0:
            call: ll.Transfer | ll.Mint | ll.Swap = ll.Transfer(
                rng.choice(accounts), rng.randrange(2), amount
            )
        elif kind == 1:
            call = ll.Mint(rng.choice(accounts), rng.randrange(2), amount)
        else:
            x = rng.randrange(2)
            r_in, r_out = initial[POOL].get(x, 0), initial[POOL].get(1 - x, 0)
            exact = swap_output(amount, r_in, r_out) if amount or r_in else 0
            min_out = rng.choice([0, 1, exact, exact + 1, max(0, exact - 1), MAX])
            call = ll.Swap(POOL, x, amount, min(MAX, min_out))
        txs.append(ll.sign(kp, i, call))
    return initial, txs


def test_kernel_matches_reference_on_random_adversarial_rows() -> None:
    rng = random.Random(42)
    for _ in range(400):
        initial, txs = random_case(rng)
        state = {(a, x): v for a, held in initial.items() for x, v in held.items() if v}
        expected = [int(apply(state, GENESIS, tx.sender, tx.call)) for tx in txs]
        ids = id_assigner()

        rows = np.frombuffer(
            b"".join(row_of(tx, GENESIS, lambda _: None, ids) for tx in txs), dtype=ROW_DTYPE
        )
        out = replay_rows(rows, initial)
        assert out.status.tolist() == expected
        for account in initial:
            assert out.holdings(account, initial[account]) == balances_of(state, account)


def test_kernel_stops_at_unknown_ops() -> None:
    z = np.zeros(3, dtype=np.int64)
    op = np.array([1, 99, 1], dtype=np.uint8)
    bal = np.zeros(1, dtype=np.int64)
    status = np.zeros(3, dtype=np.uint8)
    assert kernel.replay(op, z, z, z, z, z + 1, z, bal, status, 0) == 1


def test_dense_and_hashed_slots_agree() -> None:
    """Long replays index balances densely by account id, thin slices through a hash table;
    the same rows must replay identically either way."""
    rng = random.Random(7)
    for _ in range(200):
        initial, txs = random_case(rng)
        ids = id_assigner()
        rows = np.frombuffer(
            b"".join(row_of(tx, GENESIS, lambda _: None, ids) for tx in txs), dtype=ROW_DTYPE
        ).copy()
        dense = replay_rows(rows, initial)
        sparse_rows = rows.copy()
        sparse_rows["id0"] = rows["id0"] * 100_003 + 11  # ids far apart: the hash-table path
        sparse_rows["id1"] = rows["id1"] * 100_003 + 11
        hashed = replay_rows(sparse_rows, initial)
        assert (dense.slot_table is None) != (hashed.slot_table is None) or len(rows) < 3
        assert dense.status.tolist() == hashed.status.tolist()
        for account in initial:
            assert dense.holdings(account, initial[account]) == hashed.holdings(
                account, initial[account]
            )


def test_the_composed_kernel_is_cached_where_asked(tmp_path: Path) -> None:
    """A fresh process composes the kernel into ``$LAZYLEDGER_CACHE`` and replays with it; a
    second process finds the same file (and Numba's cache beside it)."""
    code = (
        "import numpy as np\n"
        "from lazyledger.materialize import kernel\n"
        "op = np.array([1], np.uint8); z = np.zeros(1, np.int64)\n"
        "bal = np.array([5, 0], np.int64); st = np.zeros(1, np.uint8)\n"
        "assert kernel.replay(op, z, z + 1, z, z, z + 2, z, bal, st, 0) == 1\n"
        "print(bal.tolist())\n"
    )
    env = {**os.environ, "LAZYLEDGER_CACHE": str(tmp_path)}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "[3, 2]"
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert len([f for f in files if f.endswith(".py")]) == 1 and "__pycache__" in files
