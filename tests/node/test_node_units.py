"""Mempool ordering and bounds, configuration files and flags, genesis TOML, the CLI init."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import tomli_w
from nodehelp import USERS, node_genesis

import lazyledger as ll
from lazyledger.node import cli
from lazyledger.node.config import (
    SETTINGS,
    ConfigError,
    NodeConfig,
    genesis_from_toml,
    genesis_to_toml,
    load_config,
    read_genesis,
    render_config,
)
from lazyledger.node.mempool import Journal, Mempool, MempoolFull, NonceConflict
from lazyledger.node.peers import PeerBook


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
    bounded = attrs.evolve(g, max_blob_bytes=4096)
    assert genesis_to_toml(bounded)["max_blob_bytes"] == 4096
    assert genesis_from_toml(genesis_to_toml(bounded)) == bounded
    with pytest.raises(ll.InvalidGenesis, match="max_blob_bytes"):
        genesis_from_toml({**genesis_to_toml(g), "max_blob_bytes": "big"})
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


def test_init_writes_every_setting_with_its_default_and_a_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    datadir = tmp_path / "n"
    assert cli.main(["init", "--dev", "--datadir", str(datadir), "--accounts", "1"]) == 0
    text = (datadir / "config.toml").read_text()
    lines = text.splitlines()
    assert set(SETTINGS) == {f for f in attrs.fields_dict(NodeConfig) if f != "datadir"}
    for name in SETTINGS:
        at = next(i for i, line in enumerate(lines) if line.lstrip("# ").startswith(f"{name} ="))
        assert lines[at - 1].startswith("# Default: "), name
        assert lines[at - 2].startswith("# ") and len(lines[at - 2]) > 12, name
    assert load_config(datadir) == NodeConfig(datadir=datadir)  # the defaults, as written
    assert "[node]" in lines


def test_a_written_config_reads_back(tmp_path: Path) -> None:
    cfg = NodeConfig(
        datadir=tmp_path,
        port=1,
        follow="http://127.0.0.1:9",
        key_file=tmp_path / "k",
        workers=3,
        block_interval=2.0,
        log_level="debug",
        allow_remote=True,
        host="0.0.0.0",
    )
    (tmp_path / "config.toml").write_text(render_config(cfg))
    assert load_config(tmp_path) == cfg


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[node]\nport = 1\n[p2p]\nseeds = "x"\n', "unknown top-level key 'p2p'"),
        ("port = 1\n", "unknown top-level key 'port' (settings go in the [node] table)"),
        ("node = 1\n", "'node' must be a table"),
        ("[node]\nprot = 1\n", "unknown setting 'prot'"),
        ("[node]\nworkers = 0\n", "workers must be at least 1"),
    ],
)
def test_unknown_or_bad_config_keys_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_config(tmp_path)
    assert cli.main(["run", "--datadir", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err, err


def test_keys_generate_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.key"
    assert cli.main(["keys", "generate", "--out", str(path)]) == 0
    made = json.loads(capsys.readouterr().out)
    assert path.stat().st_mode & 0o777 == 0o600
    kp = ll.Keypair.from_seed(bytes.fromhex(path.read_text()))
    assert made == {
        "file": str(path),
        "public_key": kp.public_key.hex(),
        "account": kp.account.hex(),
    }
    assert kp.seed.hex() not in json.dumps(made)
    assert cli.main(["keys", "show", "--key", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == made
    before = path.read_bytes()
    assert cli.main(["keys", "generate", "--out", str(path)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err and path.read_bytes() == before
    (tmp_path / "node_key").write_text("hello\n")
    assert cli.main(["keys", "show", "--datadir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "does not hold a key" in err
    assert cli.main(["keys", "show", "--key", str(tmp_path / "none")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_peer_book_lists_recent_named_followers_only() -> None:
    book = PeerBook(ttl=30.0, capacity=2)
    book.saw("http://127.0.0.1:1", "127.0.0.1", "5", now=100.0)
    book.saw("not a url", "127.0.0.1", "5", now=100.0)
    book.saw(None, "127.0.0.1", None, now=100.0)
    book.saw("http://127.0.0.1:2", "127.0.0.1", "x", now=110.0)
    assert [(p.url, p.height) for p in book.recent(now=120.0)] == [
        ("http://127.0.0.1:1", 5),
        ("http://127.0.0.1:2", None),
    ]
    assert [p.url for p in book.recent(now=135.0)] == ["http://127.0.0.1:2"]  # 1 timed out
    book.saw("http://127.0.0.1:2", "127.0.0.1", "7", now=135.0)
    book.saw("http://127.0.0.1:2", "127.0.0.1", None, now=135.5)  # a fetch: no height
    assert [(p.height, p.seen) for p in book.recent(now=136.0)] == [(7, 135.5)]
    book.saw("http://127.0.0.1:3", "127.0.0.1", "1", now=136.0)
    book.saw("http://127.0.0.1:4", "127.0.0.1", "1", now=137.0)  # over capacity: 2 goes
    assert [p.url for p in book.recent(now=137.0)] == ["http://127.0.0.1:3", "http://127.0.0.1:4"]


def test_checkpoint_policy_setting(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, {"checkpoint_policy": "epochs:5"})
    assert cfg.policy() == ll.CheckpointPolicy.epochs(every=5)
    cfg = load_config(tmp_path, {"checkpoint_policy": "hubs:50:20"})
    assert cfg.policy() == ll.CheckpointPolicy.hubs(top=50, every=20)
    assert load_config(tmp_path).policy() is None
    for bad in ("daily", "epochs:0", "hubs:5", "epochs:x", "hubs:0:3"):
        with pytest.raises(ConfigError, match="checkpoint_policy"):
            load_config(tmp_path, {"checkpoint_policy": bad})


def test_query_workers_setting(tmp_path: Path) -> None:
    assert load_config(tmp_path).query_workers == 0
    assert load_config(tmp_path, {"query_workers": 3}).query_workers == 3
    for bad in (-1, 65):
        with pytest.raises(ConfigError, match="query_workers"):
            load_config(tmp_path, {"query_workers": bad})


def test_merged_metrics_label_every_sample_with_its_worker() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lazyledger.node.query import merge_metrics

    parts = []
    for name, hits in (("owner", 1), ("1", 2), ("2", 5)):
        r = CollectorRegistry()
        c = Counter("q_total", "queries", ["route"], registry=r)
        c.labels("/state").inc(hits)
        Histogram("lat_seconds", "latency", registry=r, buckets=(1.0,)).observe(0.5)
        parts.append((name, generate_latest(r)))
    merged = merge_metrics(parts).decode()
    assert merged.count("# TYPE q_total counter") == 1  # one family, not one per worker
    found = {
        (s.labels["worker"], s.labels.get("route")): s.value
        for fam in text_string_to_metric_families(merged)
        if fam.name == "q"
        for s in fam.samples
        if s.name == "q_total"
    }
    assert found == {("owner", "/state"): 1.0, ("1", "/state"): 2.0, ("2", "/state"): 5.0}
    counts = [
        s
        for fam in text_string_to_metric_families(merged)
        if fam.name == "lat_seconds"
        for s in fam.samples
        if s.name == "lat_seconds_count"
    ]
    assert sorted(s.labels["worker"] for s in counts) == ["1", "2", "owner"]
