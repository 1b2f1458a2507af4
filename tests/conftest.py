from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lazyledger as ll


@pytest.fixture
def keys() -> list[ll.Keypair]:
    return [ll.Keypair.from_seed(bytes([i + 1]) * 32) for i in range(4)]


@pytest.fixture
def genesis(keys: list[ll.Keypair]) -> ll.Genesis:
    a, b, _, _ = keys
    return ll.Genesis(
        chain_id="test",
        n_shards=4,
        authorities=[a.public_key],
        assets={0: a.account, 1: b.account},
        balances={a.account: {0: 1000}, b.account: {1: 500}, b"\x77" * 32: {0: 10**6, 1: 10**6}},
        pools={b"\x77" * 32: (0, 1)},
    )


@pytest.fixture
def ledger(tmp_path: Path, genesis: ll.Genesis) -> Iterator[ll.Ledger]:
    led = ll.Ledger.create(tmp_path / "chain", genesis)
    yield led
    led.close()
