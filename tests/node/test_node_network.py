"""A proposer and a follower as real processes on loopback: same head, same states, catch-up
after the follower is killed, graceful SIGTERM, and verified light-client answers."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nodehelp import PROPOSER, USERS, NodeProcess, make_datadir, node_genesis, wait_until

import lazyledger as ll
from lazyledger.client import Client, HeaderChain, NodeError, StaleAnswer
from lazyledger.materialize.reference import replay_chain
from lazyledger.node.config import write_key

Spawn = Callable[..., NodeProcess]


@pytest.fixture(scope="module")
def network(
    spawn: Spawn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    root = tmp_path_factory.mktemp("net")
    p_dir, genesis_file = make_datadir(root, "proposer", key=True)
    proposer = spawn(p_dir, "--genesis", str(genesis_file), "--block-interval", "0.1")
    f_dir = root / "follower"  # created by the follower from the upstream genesis
    follower = spawn(f_dir, "--follow", proposer.url)
    yield proposer, follower


def submit_round(client: Client, round_: int, n: int = 12) -> list[bytes]:
    """``n`` transfers between the test users, each signed with the next nonce."""
    ids = []
    for k in range(n):
        sender = USERS[(k + round_) % len(USERS)]
        to = USERS[(3 * k + round_ + 1) % len(USERS)].account
        tx = ll.transfer(
            sender,
            nonce=client.nonce(sender.account),
            to=to,
            asset=0,
            amount=1 + 37 * k + round_,
            chain_id="node-test",
        )
        ids.append(client.broadcast(tx))
    return ids


def committed(client: Client, ids: list[bytes]) -> bool:
    for tx_id in ids:
        try:
            client.transaction(tx_id)
        except NodeError as e:
            if e.status == 404:
                return False
            raise
    return True


def same_head(a: Client, b: Client) -> bool:
    sa, sb = a.status(), b.status()
    return bool(sa["height"] == sb["height"] and sa["head"] == sb["head"])


def check_states(proposer: Client, follower: Client) -> None:
    """Both nodes materialise every user as the pure-Python reference replay does."""
    height = proposer.status()["height"]
    blocks = [proposer.block(h) for h in range(1, height + 1)]
    expected, _ = replay_chain(node_genesis(), blocks)
    for user in USERS:
        a = proposer.state(user.account, height)
        b = follower.state(user.account, height)
        assert a == b == expected[user.account]


def test_follower_has_the_proposers_chain(network: tuple[NodeProcess, NodeProcess]) -> None:
    proposer, follower = network
    with Client(proposer.url) as p, Client(follower.url) as f:
        ids = submit_round(p, 0) + submit_round(f, 1)  # the follower forwards to the proposer
        wait_until(lambda: committed(p, ids), "transactions in blocks")
        wait_until(lambda: same_head(p, f), "the follower to reach the proposer's head")
        assert p.status()["height"] >= 1
        check_states(p, f)
        assert all(f.receipt(i).applied for i in ids)


def test_the_proposer_lists_its_follower_as_a_peer(
    network: tuple[NodeProcess, NodeProcess],
) -> None:
    proposer, follower = network
    with Client(proposer.url) as p, Client(follower.url) as f:
        wait_until(lambda: follower.url in p.status()["peers"], "the follower among the peers")
        assert f.status()["peers"] == [proposer.url]
        net = p.http.get("/net_info").json()
        assert net["listeners"] == [proposer.url] and net["n_peers"] == len(net["peers"])
        mine = next(x for x in net["peers"] if x["url"] == follower.url)
        assert mine["role"] == "follower" and mine["remote_ip"] == "127.0.0.1"
        assert 0 <= mine["last_seen_s"] < 30 and isinstance(mine["height"], int)
        up = f.http.get("/net_info").json()["peers"]
        assert [(x["url"], x["role"]) for x in up] == [(proposer.url, "upstream")]


def test_follower_catches_up_after_a_kill(
    network: tuple[NodeProcess, NodeProcess],
) -> None:
    proposer, follower = network
    with Client(proposer.url) as p:
        follower.stop(signal.SIGKILL)
        ids = submit_round(p, 2)
        wait_until(lambda: committed(p, ids), "transactions in blocks while the follower is down")
        follower.start()
        with Client(follower.url) as f:
            wait_until(lambda: same_head(p, f), "the restarted follower to catch up")
            assert committed(f, ids)
            check_states(p, f)


def test_sigterm_is_a_graceful_exit(network: tuple[NodeProcess, NodeProcess]) -> None:
    proposer, follower = network
    assert follower.stop(signal.SIGTERM) == 0
    assert "node stopped" in follower.log()
    follower.start()  # the ledger reopens cleanly
    with Client(proposer.url) as p, Client(follower.url) as f:
        wait_until(lambda: same_head(p, f), "the follower after a restart")


def test_light_client_verifies_a_followers_answer(
    network: tuple[NodeProcess, NodeProcess],
) -> None:
    proposer, follower = network
    with Client(proposer.url) as p, Client(follower.url) as f:
        wait_until(lambda: same_head(p, f), "the follower to be in step")
        chain = HeaderChain(node_genesis())
        for user in USERS[:3]:
            verified = f.verified_state(user.account, chain)
            assert verified.state == p.state(user.account, verified.height)
            assert verified.slice_txs > 0 and verified.nonce_verified


def test_light_client_checks_complete_slices_over_http(
    network: tuple[NodeProcess, NodeProcess],
) -> None:
    proposer, follower = network
    with Client(proposer.url) as p, Client(follower.url) as f:
        wait_until(lambda: same_head(p, f), "the follower to be in step")
        lc = ll.LightClient(node_genesis())
        for user in USERS[:3]:
            v = lc.state(f, user.account)
            assert v.state == p.state(user.account, v.height) and v.slice_txs > 0
            positions = lc.verify_slice(f.slice_proof(user.account, v.height), v.height)
            assert len(positions) == v.slice_txs
            old = f.state_proof(user.account, 1)
            if v.height > 1:
                with pytest.raises(StaleAnswer):
                    lc.verify_state(old, v.height)  # an old answer is not the current one
        top = lc.height
        late = ll.LightClient(node_genesis(), trusted=f.header(top))
        assert late.state(f, USERS[0].account, top).state == p.state(USERS[0].account, top)
        assert late.lowest == 1  # headers below the trusted one were linked back to genesis


def test_metrics_are_exposed(network: tuple[NodeProcess, NodeProcess]) -> None:
    proposer, _ = network
    with Client(proposer.url) as p:
        text = p.http.get("/metrics").text
    for name in (
        "lazyledger_materializations_total",
        "lazyledger_http_request_seconds_bucket",
        "lazyledger_slice_transactions_bucket",
        "lazyledger_state_cache_total",
        "lazyledger_lmdb_used_bytes",
        "lazyledger_lmdb_free_bytes",
        'lazyledger_lmdb_table_bytes{env="',
        'table="bodies"',
        "lazyledger_blocks_appended_total",
    ):
        assert name in text


def test_a_proposer_key_must_be_an_authority(tmp_path: Path) -> None:
    datadir, genesis_file = make_datadir(tmp_path, "stranger", key=False)
    write_key(datadir / "node_key", USERS[0])
    cmd = [sys.executable, "-m", "lazyledger.node", "run", "--datadir", str(datadir)]
    r = subprocess.run(
        [*cmd, "--genesis", str(genesis_file), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "not an authority" in r.stderr
    assert PROPOSER.public_key != USERS[0].public_key
