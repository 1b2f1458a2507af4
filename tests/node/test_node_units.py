"""Mempool ordering and bounds, configuration files and flags, genesis TOML, the CLI init."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from nodehelp import USERS, node_genesis

import lazyledger as ll
from lazyledger.node import cli
from lazyledger.node.config import (
    ConfigError,
    genesis_from_toml,
    genesis_to_toml,
    load_config,
    read_genesis,
)
from lazyledger.node.mempool import Journal, Mempool, MempoolFull, NonceConflict


def tx(n: int, sender: ll.Keypair = USERS[0], amount: int = 1) -> ll.Transaction:
    return ll.transfer(sender, nonce=n, to=USERS[1].account, asset=0, amount=amount)


def test_mempool_takes_contiguous_runs_and_drops_stale() -> None:
    pool = Mempool(10)
    for n in (0, 1, 3):
        assert pool.add(tx(n))
    assert not pool.add(tx(0))  # same transaction again
    with pytest.raises(NonceConflict):
        pool.add(tx(1, amount=2))
    assert [t.nonce for t in pool.take(10, lambda a: 0)] == [0, 1]  # 3 waits for 2
    assert pool.next_nonce(USERS[0].account, 0) == 2
    assert [t.nonce for t in pool.take(10, lambda a: 1)] == [1]
    assert len(pool) == 2  # nonce 0 was stale and dropped
    pool.remove([tx(1)])
    assert pool.add(tx(2))
    assert [t.nonce for t in pool.take(1, lambda a: 2)] == [2]
    assert [t.nonce for t in pool.take(5, lambda a: 2)] == [2, 3]


def test_mempool_is_bounded() -> None:
    pool = Mempool(2)
    pool.add(tx(0))
    pool.add(tx(1))
    with pytest.raises(MempoolFull) as info:
        pool.add(tx(2))
    assert isinstance(info.value, ll.LedgerError) and len(pool) == 2


def test_config_file_and_flag_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[node]\nport = 1234\nblock_interval = 2\n")
    cfg = load_config(tmp_path, {"port": 4321, "host": None})
    assert (cfg.port, cfg.block_interval, cfg.host) == (4321, 2.0, "127.0.0.1")
    with pytest.raises(ConfigError, match="loopback"):
        load_config(tmp_path, {"host": "0.0.0.0"})
    assert load_config(tmp_path, {"host": "0.0.0.0", "allow_remote": True}).host == "0.0.0.0"
    (tmp_path / "config.toml").write_text("[node]\nprot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(tmp_path)
    (tmp_path / "config.toml").write_text('[node]\nport = "x"\n')
    with pytest.raises(ConfigError, match="port"):
        load_config(tmp_path)


def test_genesis_toml_round_trip() -> None:
    g = ll.Genesis(
        "rt",
        2,
        [USERS[0].public_key],
        {0: USERS[0].account, 1: USERS[1].account},
        {USERS[2].account: {0: 5, 1: 7}, b"\x77" * 32: {0: 9, 1: 9}},
        {b"\x77" * 32: (0, 1)},
    )
    assert genesis_from_toml(genesis_to_toml(g)).id == g.id
    with pytest.raises(ll.InvalidGenesis, match="chain_id"):
        genesis_from_toml({"n_shards": 1})
    with pytest.raises(ll.InvalidGenesis, match="hex"):
        genesis_from_toml({"chain_id": "x", "n_shards": 1, "authorities": ["zz"]})


def test_cli_init_dev(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "n1"
    assert cli.main(["init", "--dev", "--datadir", str(datadir), "--accounts", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    g = read_genesis(datadir / "genesis.toml")
    assert out["genesis"] == g.id.hex() and len(g.balances) == 3
    assert (datadir / "node_key").stat().st_mode & 0o077 == 0
    with ll.Ledger.open(datadir / "ledger") as led:
        assert led.genesis_id == g.id
    assert cli.main(["init", "--dev", "--datadir", str(datadir)]) == 2  # never overwrites
    assert node_genesis().id != g.id


def test_journal_replays_complete_lines_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "mempool.journal"
    journal = Journal(path)
    journal.rewrite([])
    for n in range(3):
        journal.append(tx(n))
    with open(path, "ab") as f:
        f.write(tx(3).raw.hex()[:40].encode())  # a write torn by a kill
    assert journal.load() == [tx(n).raw for n in range(3)]
    pool = Mempool(10)
    pool.add(tx(2))
    assert journal.compact(pool, slack=0)  # 3 lines for 1 pending
    assert journal.load() == [tx(2).raw]
    assert not journal.compact(pool, slack=0)
    assert journal.compact(Mempool(10))  # nothing pending: emptied
    assert path.read_bytes() == b""
    journal.close()
    with pytest.raises(ll.StorageError, match="closed"):
        journal.append(tx(4))


def test_cli_init_and_run_write_nothing_for_a_bad_genesis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = genesis_to_toml(node_genesis())
    doc["n_shards"] = 4_000_000
    bad = tmp_path / "bad.toml"
    bad.write_text(tomli_w.dumps(doc))
    datadir = tmp_path / "n"
    assert cli.main(["init", "--datadir", str(datadir), "--genesis", str(bad)]) == 2
    assert "n_shards 4000000 outside 1..1024" in capsys.readouterr().err
    run = [sys.executable, "-m", "lazyledger.node", "run", "--datadir", str(datadir)]
    done = subprocess.run(
        [*run, "--genesis", str(bad), "--port", "0"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "n_shards 4000000 outside 1..1024" in done.stderr
    assert not datadir.exists()
    with pytest.raises(SystemExit):
        cli.main(["init", "--dev", "--datadir", str(datadir), "--shards", "4000000"])
    with pytest.raises(SystemExit):
        cli.main(["status", "--node", "localhost:26657"])
    assert "expected http://HOST:PORT" in capsys.readouterr().err
    assert not datadir.exists()
