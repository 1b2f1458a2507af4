"""The node's command line and HTTP edges against real node processes on loopback: ids are
checked before anything is sent, a transfer waits for its receipt, acknowledged transactions
survive a proposer kill, and failures are one-line messages or 4xx/503 answers, never a
traceback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from nodehelp import USERS, NodeProcess, free_port, make_datadir, wait_until

import lazyledger as ll
from lazyledger.client import Client
from lazyledger.node.config import write_genesis, write_key

Spawn = Callable[..., NodeProcess]


def node_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``lazyledger node ARGS`` in a fresh process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "lazyledger.cli", "node", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str], words: str, rc: int = 2) -> None:
    assert done.returncode == rc, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.fixture(scope="module")
def proposer(spawn: Spawn, tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    root = tmp_path_factory.mktemp("cli")
    datadir, genesis_file = make_datadir(root, "proposer", key=True)
    return spawn(datadir, "--genesis", str(genesis_file), "--block-interval", "0.1")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("keys")
    for i, user in enumerate(USERS):
        write_key(root / f"{i}.key", user)
    return [root / f"{i}.key" for i in range(len(USERS))]


def test_malformed_ids_are_refused_and_nothing_is_sent(
    proposer: NodeProcess, keys: list[Path]
) -> None:
    to = USERS[1].account.hex()
    base = ["transfer", "--node", proposer.url, "--key", str(keys[4]), "--amount", "5"]
    for bad in ("1234", "", "zz" * 32, to[:62], to + "00", "0x" + to[:60], "0x" + to + "0"):
        one_line_error(node_cli(*base, "--to", bad), "64 hex digits")
    one_line_error(node_cli(*base[:-1], "-5", "--to", to), "--amount: must be in 1..")
    one_line_error(node_cli("state", "--node", proposer.url, "--account", "abc"), "64 hex")
    one_line_error(node_cli("receipt", "--node", proposer.url, "--id", "0x"), "64 hex digits")
    with Client(proposer.url) as cl:
        assert cl.nonce(USERS[4].account) == 0
        assert cl.status()["mempool"]["size"] == 0
        assert cl.state(bytes(32)) == ll.AccountState(0, {})  # nothing paid to the zero account


def test_status_shows_map_use_and_table_sizes(proposer: NodeProcess) -> None:
    done = node_cli("status", "--node", proposer.url)
    assert done.returncode == 0, done.stderr
    storage = json.loads(done.stdout)["storage"]
    kinds = sorted(e["kind"] for e in storage.values())
    assert kinds == ["blobs", "cache", "meta", *["shard"] * (len(kinds) - 3)]
    for env in storage.values():
        assert 0 < env["used_bytes"] <= env["map_size"] and env["free_pages"] >= 0
        assert all(t["bytes"] == t["pages"] * env["page_size"] for t in env["tables"].values())
    shard = next(e for e in storage.values() if e["kind"] == "shard")
    assert set(shard["tables"]) == {"info", "bodies", "rows", "hosted"}


def test_transfer_waits_for_its_receipt(proposer: NodeProcess, keys: list[Path]) -> None:
    to = USERS[1].account.hex()
    base = ["transfer", "--node", proposer.url, "--key", str(keys[0]), "--to"]
    done = node_cli(*base, "0x" + to, "--amount", "25")  # a 0x prefix is accepted
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    assert receipt["applied"] is True and receipt["included"] is True and receipt["height"] >= 1
    done = node_cli(*base, to, "--amount", "10001")  # above the balance: in a block, failed
    assert done.returncode == 1, done.stderr
    receipt = json.loads(done.stdout)
    assert receipt["applied"] is False and receipt["reason"] == "insufficient balance"
    assert "failed: insufficient balance" in done.stderr
    done = node_cli(*base, to, "--amount", "1", "--async")
    assert done.returncode == 0 and json.loads(done.stdout)["included"] is False
    assert "not yet in a block" in done.stderr
    tx_id = json.loads(done.stdout)["hash"]
    done = node_cli("receipt", "--node", proposer.url, "--id", tx_id, "--wait", "60")
    assert done.returncode == 0 and json.loads(done.stdout)["applied"] is True, done.stderr


def test_tx_block_and_nonce_commands(proposer: NodeProcess, keys: list[Path]) -> None:
    to = USERS[2].account.hex()
    sent = node_cli("transfer", "--node", proposer.url, "--key", str(keys[5]), "--to", to,
                    "--amount", "3")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    receipt = json.loads(sent.stdout)
    done = node_cli("tx", "--node", proposer.url, "--id", receipt["hash"])
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["id"] == receipt["hash"] and shown["sender"] == USERS[5].account.hex()
    assert shown["call"] == {"to": to, "asset": 0, "amount": 3}
    assert shown["position"] == receipt["position"] and shown["height"] == receipt["height"]
    done = node_cli("block", "--node", proposer.url, "--height", str(receipt["height"]))
    assert done.returncode == 0, done.stderr
    block = json.loads(done.stdout)
    assert receipt["hash"] in [t["id"] for t in block["txs"]]
    assert block["num_txs"] == len(block["txs"]) and block["header"]["height"] == receipt["height"]
    done = node_cli("block", "--node", proposer.url)  # the head block
    with Client(proposer.url) as cl:
        assert json.loads(done.stdout)["header"]["height"] == cl.status()["height"]
    done = node_cli("nonce", "--node", proposer.url, "--account", USERS[5].account.hex())
    assert json.loads(done.stdout) == {
        "account": USERS[5].account.hex(), "committed": 1, "next": 1
    }  # fmt: skip
    one_line_error(node_cli("tx", "--node", proposer.url, "--id", "00" * 32), "404 NotFound")
    one_line_error(node_cli("block", "--node", proposer.url, "--height", "99999"), "outside")
    one_line_error(node_cli("block", "--node", proposer.url, "--height", "0"), "must be in 1..")
    one_line_error(node_cli("nonce", "--node", proposer.url, "--account", "12"), "64 hex digits")


def test_an_acknowledged_transaction_survives_a_proposer_kill(
    spawn: Spawn, tmp_path: Path, keys: list[Path]
) -> None:
    datadir, genesis_file = make_datadir(tmp_path, "slow", key=True)
    slow = spawn(datadir, "--genesis", str(genesis_file), "--block-interval", "3600")
    to = USERS[2].account.hex()
    done = node_cli(
        "transfer", "--node", slow.url, "--key", str(keys[3]), "--to", to, "--amount", "7",
        "--timeout", "1",
    )  # fmt: skip
    one_line_error(done, "is not in a block after 1 s")
    tx_id = bytes.fromhex(done.stderr.split("transaction ")[1].split()[0])
    slow.stop(signal.SIGKILL)
    fast = spawn(datadir, "--block-interval", "0.1")
    with Client(fast.url) as cl:
        assert cl.wait_receipt(tx_id, 60).applied
        assert cl.state(USERS[2].account).balances == {0: 10_007}
    assert "mempool restored" in fast.log()
    assert fast.stop() == 0
    assert (datadir / "mempool.journal").read_text() == ""  # included: dropped from it


def test_a_follower_whose_proposer_is_down_answers_503(
    spawn: Spawn, tmp_path: Path, keys: list[Path]
) -> None:
    datadir, genesis_file = make_datadir(tmp_path, "up", key=True)
    up = spawn(datadir, "--genesis", str(genesis_file), "--block-interval", "0.1")
    down = spawn(tmp_path / "down", "--follow", up.url)
    with Client(down.url) as cl:
        wait_until(lambda: cl.status()["catching_up"] is False, "the follower to be in step")
        assert cl.status()["upstream"]["reachable"] is True
        assert up.stop() == 0
        tx = ll.transfer(USERS[0], nonce=0, to=USERS[1].account, asset=0, amount=1)
        r = cl.http.post("/broadcast_tx_sync", json={"tx": tx.raw.hex()})
        assert r.status_code == 503, r.text
        assert up.url in r.json()["error"]["message"]
        r = cl.http.post("/broadcast_txs", json={"txs": [tx.raw.hex()]})
        assert r.status_code == 503, r.text
        wait_until(lambda: not cl.status()["upstream"]["reachable"], "the follower to notice")
    done = node_cli(
        "transfer", "--node", down.url, "--key", str(keys[0]), "--to", USERS[1].account.hex(),
        "--amount", "1",
    )  # fmt: skip
    one_line_error(done, "503 UpstreamUnavailable")
    assert "Traceback" not in down.log()


def test_bad_bodies_and_disconnects_are_not_server_errors(proposer: NodeProcess) -> None:
    deep = b"[" * 1500 + b"]" * 1500
    r = httpx.post(proposer.url + "/broadcast_tx_sync", content=deep, timeout=30)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
    r = httpx.post(proposer.url + "/broadcast_txs", content=b'{"txs": ' + deep + b"}", timeout=30)
    assert r.status_code == 400, r.text
    with socket.create_connection(("127.0.0.1", proposer.port)) as s:
        s.sendall(
            b"POST /broadcast_tx_sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"tx": "ab'
        )
        time.sleep(0.3)
    wait_until(lambda: "client disconnected" in proposer.log(), "the disconnect to be logged")
    assert httpx.get(proposer.url + "/health").status_code == 200
    log = proposer.log()
    assert log.count("client disconnected") == 1
    assert "Traceback" not in log and "unhandled error" not in log


def test_startup_errors_are_one_line(proposer: NodeProcess, tmp_path: Path) -> None:
    datadir, genesis_file = make_datadir(tmp_path, "second", key=True)
    run = ["run", "--datadir", str(datadir), "--genesis", str(genesis_file)]
    done = node_cli(*run, "--port", str(proposer.port))
    one_line_error(done, f"cannot listen on 127.0.0.1:{proposer.port}: Address already in use")
    assert "listening" not in done.stdout + done.stderr
    one_line_error(node_cli(*run, "--host", "0.0.0.0"), "pass --allow-remote")
    nowhere = f"http://127.0.0.1:{free_port()}"
    one_line_error(node_cli("status", "--node", nowhere), f"cannot reach the node at {nowhere}")


def test_another_chains_genesis_is_named(proposer: NodeProcess, tmp_path: Path) -> None:
    other = ll.Genesis(
        chain_id="elsewhere",
        n_shards=2,
        authorities=[USERS[0].public_key],
        assets={0: USERS[0].account},
        balances={},
    )
    write_genesis(tmp_path / "other.toml", other)
    done = node_cli(
        "state", "--node", proposer.url, "--account", USERS[1].account.hex(),
        "--verify", str(tmp_path / "other.toml"),
    )  # fmt: skip
    one_line_error(done, "runs another chain")
