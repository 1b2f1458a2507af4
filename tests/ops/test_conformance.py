"""Every registered op's Numba kernel against its pure-Python ``apply``, on random and
MAX-edge calls and states. Calls are drawn from each op's declared argument layout, so an op
added to the registry (built-in or an embedder's) is covered without a line here."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import kernel
from lazyledger.materialize.replay import replay_rows
from lazyledger.materialize.rows import row_dtype, with_ids
from lazyledger.ops import (
    JOB_STATUS,
    MAX,
    REGISTER_BASE,
    REGISTRY,
    Context,
    OpSpec,
    balances_of,
    examples,
    job_account,
    payments,
)
from lazyledger.ops.base import widths

EDGE = [1, 2, 996, 997, 1000, 2**31, 2**32 - 1, 2**32, 2**62, MAX // 997, MAX // 2, MAX - 1, MAX]
KEYS = [ll.Keypair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
POOL = b"\x50" * 32
GENESIS = ll.Genesis(
    "conformance",
    1,
    [KEYS[0].public_key],
    {0: KEYS[0].account, 1: KEYS[1].account},
    {},
    {POOL: (0, 1)},
)
TX_IDS = [bytes([0xA0 + i]) * 32 for i in range(3)]
JOBS = [job_account(t) for t in TX_IDS]
ACCOUNTS = [k.account for k in KEYS] + [POOL, *JOBS]
ASSETS = [0, 1, 2, JOB_STATUS, REGISTER_BASE, REGISTER_BASE + 1]


def _value(rng: random.Random, code: str, width: int) -> Any:
    if code == "s":
        if width == 32 and rng.random() < 0.9:
            return rng.choice(ACCOUNTS)
        return rng.randbytes(width)
    if code in "?B":
        return rng.randrange(2)
    if code in "Hh":
        return rng.choice([0, 1, 2, rng.randrange(1 << 16)])
    if code in "Ii":
        return rng.choice([*ASSETS[:3], rng.randrange(1 << 32)])
    top = (1 << (8 * width)) - 1
    return rng.choice([0, *EDGE, rng.randrange(0, min(top, MAX) + 1), rng.randrange(1, 10**4)])


def _split(rng: random.Random) -> payments.Split:
    """A split (its arguments have no fixed layout): 1..6 payees, repeats and the sender
    among them."""
    payees = [(rng.choice(ACCOUNTS), _value(rng, "Q", 8)) for _ in range(rng.randrange(1, 7))]
    return payments.Split(rng.choice(ASSETS[:3]), tuple(payees))


DRAW = {payments.SPLIT: _split}
"""Drawers for ops whose arguments are not one fixed layout."""


def random_call(rng: random.Random, spec: OpSpec) -> tuple[bytes, Any]:
    """A sender and a call of ``spec`` that passes its stateless check, drawn from the op's
    argument layout."""
    assert spec.call is not None
    fields = widths(spec.call.LAYOUT) if spec.code not in DRAW else []
    for _ in range(2000):
        sender = rng.choice(KEYS).account
        if spec.code in DRAW:
            call = DRAW[spec.code](rng)
        else:
            call = spec.call(*(_value(rng, code, width) for code, width in fields))
        try:
            call.check(GENESIS, sender)
        except ll.InvalidTransaction:
            continue
        return sender, call
    raise AssertionError(f"no valid {spec.name} call drawn")  # pragma: no cover


def random_state(rng: random.Random) -> dict[bytes, dict[int, int]]:
    pick = lambda: rng.choice([0, *EDGE, rng.randrange(0, MAX + 1), rng.randrange(1, 10**4)])  # noqa: E731
    held: dict[bytes, dict[int, int]] = {}
    for account in ACCOUNTS:
        for asset in ASSETS:
            if rng.random() < 0.6:
                value = rng.choice([0, 1, 2, 3, pick()]) if asset >= REGISTER_BASE else pick()
                if value:
                    held.setdefault(account, {})[asset] = value
    return held


for example in (*examples.OPS, *payments.OPS):  # embedder examples are checked like built-ins
    REGISTRY.add(example)
KERNEL_OPS = [s for s in REGISTRY if s.kernel is not None and s.call is not None]
OTHER_OPS = [s for s in REGISTRY if s.kernel is None]


def test_every_op_is_declared_once_and_runs_somewhere() -> None:
    assert {s.code for s in KERNEL_OPS} | {s.code for s in OTHER_OPS} >= {
        s.code for s in REGISTRY if s.call is not None
    }
    for spec in OTHER_OPS:  # no kernel: a Python host applies it, or it is opened first
        assert spec.hosted or spec.code in REGISTRY.opaque


@pytest.mark.parametrize("spec", KERNEL_OPS, ids=lambda s: s.name)
def test_kernel_equals_apply(spec: OpSpec) -> None:
    """A narrow op runs among narrow ops in 2-account rows; a wide op among every op, in rows
    as wide as the widest (so narrow kernels are also checked through the wide dispatch)."""
    rng = random.Random(spec.code)
    ids: dict[bytes, int] = {}
    mix = KERNEL_OPS if spec.width > 2 else [s for s in KERNEL_OPS if s.width == 2]
    width = max(s.width for s in mix)
    for _ in range(300):
        initial = random_state(rng)
        state = {(a, x): v for a, held in initial.items() for x, v in held.items()}
        expected, rows = [], []
        for _ in range(rng.randrange(1, 12)):
            use = spec if rng.random() < 0.7 else rng.choice(mix)
            sender, call = random_call(rng, use)
            ctx = Context(GENESIS, sender, rng.choice(TX_IDS))
            expected.append(int(REGISTRY.apply(state, ctx, call)))
            body = REGISTRY.row_body(ctx, call)
            rows.append(with_ids(body, lambda a: ids.setdefault(a, len(ids)), width))
        out = replay_rows(np.frombuffer(b"".join(rows), dtype=row_dtype(width)), initial)
        assert out.status.tolist() == expected
        for account in ACCOUNTS:
            got = out.holdings(account, initial.get(account, {}))
            assert {a: v for a, v in got.items() if v} == balances_of(state, account)


@pytest.mark.parametrize("spec", OTHER_OPS, ids=lambda s: s.name)
def test_kernel_leaves_the_other_ops_to_python(spec: OpSpec) -> None:
    op = np.array([1, spec.code, 1], np.uint8)
    z = np.zeros(3, np.int64)
    status = np.zeros(3, np.uint8)
    assert kernel.replay(op, z, z, z, z, z + 1, z, np.zeros(1, np.int64), status, 0) == 1
