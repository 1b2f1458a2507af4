"""A node whose chain declares embedder ops (``lazyledger.ops.examples``): ``--ops`` at run,
with 2 query workers; sweeps and burns are admitted, included, materialised and proven to a
light client like built-in calls; a node started without the ops refuses to open the chain."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from nodehelp import PROPOSER, USERS, NodeProcess, node_genesis

import lazyledger as ll
from lazyledger.client import Client
from lazyledger.node.config import write_genesis, write_key
from lazyledger.ops import payments
from lazyledger.ops.examples import OPS, Burn, Sweep

Spawn = Callable[..., NodeProcess]
pytestmark = pytest.mark.slow
SPEC = "lazyledger.ops.examples:OPS"


def test_a_node_runs_a_chain_with_embedder_ops(spawn: Spawn, tmp_path: Path) -> None:
    genesis = attrs.evolve(node_genesis(), ops=[s.declared for s in OPS])
    datadir = tmp_path / "node"
    datadir.mkdir()
    write_genesis(tmp_path / "genesis.toml", genesis)
    write_key(datadir / "node_key", PROPOSER)
    refused = subprocess.run(
        [sys.executable, "-m", "lazyledger.node", "init", "--datadir", str(datadir),
         "--genesis", str(tmp_path / "genesis.toml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "missing [128, 129]" in refused.stderr
    assert sorted(p.name for p in datadir.iterdir()) == ["node_key"]  # nothing written
    node = spawn(
        datadir, "--genesis", str(tmp_path / "genesis.toml"), "--ops", SPEC,
        "--block-interval", "0.1", "--query-workers", "2",
    )  # fmt: skip
    client = Client(node.url)
    a, b = USERS[0], USERS[1]
    burn = ll.sign(a, 0, Burn(0, 400), "node-test")  # type: ignore[arg-type]
    sweep = ll.sign(b, 0, Sweep(a.account, 0), "node-test")  # type: ignore[arg-type]
    for tx in (burn, sweep):
        client.broadcast(tx)
    for tx in (burn, sweep):
        assert client.wait_receipt(tx.id, timeout=60).applied
    assert client.state(a.account).balances == {0: 10_000 - 400 + 10_000}
    assert client.state(b.account).balances == {}
    with pytest.raises(ll.OpsMismatch):
        ll.LightClient(genesis)  # its slices hold ops it must know
    lc = ll.LightClient(genesis, ops=OPS)
    lc.sync(client)
    assert lc.verify_state(client.state_proof(a.account)).state.balances == {0: 19_600}


def test_a_node_runs_ops_wider_than_two_accounts(spawn: Spawn, tmp_path: Path) -> None:
    """Splits and sales (``lazyledger.ops.payments``, access sets up to 7) through a real
    node: admitted, included, materialised, in receipts, and proven to a light client."""
    base = node_genesis()
    a, b, c, d = USERS[0], USERS[1], USERS[2], USERS[3]
    balances = {**base.balances, b.account: {0: 10_000, 7: 1}}
    genesis = attrs.evolve(
        base,
        assets={**base.assets, 7: c.account},
        balances=balances,
        ops=[s.declared for s in payments.OPS],
    )
    datadir = tmp_path / "node"
    datadir.mkdir()
    write_genesis(tmp_path / "genesis.toml", genesis)
    write_key(datadir / "node_key", PROPOSER)
    node = spawn(
        datadir, "--genesis", str(tmp_path / "genesis.toml"),
        "--ops", "lazyledger.ops.payments:OPS", "--block-interval", "0.1",
    )  # fmt: skip
    client = Client(node.url)
    sale = payments.Sale(b.account, c.account, d.account, 7, 0, 1_000, 1_000, 500)
    split = payments.Split(0, ((b.account, 1), (c.account, 2), (d.account, 3), (b.account, 4)))
    again = payments.Sale(b.account, c.account, d.account, 7, 0, 1_000, 0, 0)  # sold already
    txs = [ll.sign(a, n, call, "node-test") for n, call in enumerate((sale, split, again))]  # type: ignore[arg-type]
    for tx in txs:
        client.broadcast(tx)
    receipts = [client.wait_receipt(tx.id, timeout=60) for tx in txs]
    assert [r.applied for r in receipts] == [True, True, False]
    assert receipts[2].reason == "the seller holds none of the item"
    assert client.state(a.account).balances == {0: 10_000 - 1_000 - 10, 7: 1}
    assert client.state(b.account).balances == {0: 10_000 + 850 + 5}
    lc = ll.LightClient(genesis, ops=payments.OPS)
    lc.sync(client)
    for user in (a, b, c, d):
        verified = lc.verify_state(client.state_proof(user.account))
        assert verified.state == client.state(user.account)
