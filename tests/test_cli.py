"""The command line's main job, run the way the README's quickstart runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lazyledger.cli import main


def test_demo_builds_materialises_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "demo",
        "--datadir",
        str(tmp_path / "d"),
        "--blocks",
        "3",
        "--txs",
        "60",
        "--accounts",
        "40",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "180 transactions" in out and "replay_all" in out
    assert len([line for line in out.splitlines() if ".. " in line]) == 6  # one row per account
    assert main(args) == 2  # an existing datadir is kept without --fresh
    assert main([*args, "--fresh"]) == 0


def test_console_script_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lazyledger.cli",
            "--datadir",
            str(tmp_path / "d"),
            "--blocks",
            "2",
            "--txs",
            "20",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "created a 4-shard ledger" in done.stdout


def test_dnn_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["dnn-demo", "--datadir", str(tmp_path / "n"), "--device", "cpu", "--epochs", "25"])
        == 0
    )
    out = capsys.readouterr().out
    assert "claim accepted; provider balance 1000" in out


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``lazyledger ARGS`` as a user runs it (a fresh process)."""
    return subprocess.run(
        [sys.executable, "-m", "lazyledger.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str], words: str, rc: int = 2) -> None:
    """Failed with ``rc``, one line on stderr that mentions ``words``, no traceback."""
    assert done.returncode == rc, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr, done.stderr


def small_demo(path: Path, *extra: str) -> list[str]:
    return [
        "demo",
        "--datadir",
        str(path),
        "--blocks",
        "2",
        "--txs",
        "10",
        "--accounts",
        "20",
        *extra,
    ]


def test_version() -> None:
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("lazyledger 0."), done


def test_fresh_removes_only_a_ledger_no_one_has_open(tmp_path: Path) -> None:
    led = tmp_path / "led"
    assert main(small_demo(led)) == 0
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("my notes")
    one_line_error(cli(*small_demo(notes, "--fresh")), "does not hold a lazyledger ledger")
    assert (notes / "todo.txt").read_text() == "my notes"
    # a node datadir holds a ledger beside keys and genesis: not a ledger itself
    node = tmp_path / "node"
    assert main(["node", "init", "--dev", "--datadir", str(node), "--accounts", "2"]) == 0
    one_line_error(cli(*small_demo(node, "--fresh")), "not removing")
    assert (node / "node_key").exists() and (node / "genesis.toml").exists()
    # a ledger with a foreign file in it is refused, and the file kept
    (led / "README").write_text("keep me")
    one_line_error(cli(*small_demo(led, "--fresh")), "'README', which is not part of a ledger")
    (led / "README").unlink()
    (led / "meta" / "backup.mdb").write_text("keep me")
    one_line_error(cli(*small_demo(led, "--fresh")), "meta/backup.mdb")
    (led / "meta" / "backup.mdb").unlink()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(cli(*small_demo(a_file, "--fresh")), "not a folder")
    assert a_file.read_text() == "x"
    # a ledger another process has open (it holds the LOCK) is refused
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, lazyledger as ll; led = ll.Ledger.open(sys.argv[1]); "
            "print('open', flush=True); sys.stdin.read()",
            str(led),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        one_line_error(cli(*small_demo(led, "--fresh")), "open in another process")
        assert (led / "meta" / "data.mdb").exists()
    finally:
        holder.communicate("", timeout=60)
    done = cli(*small_demo(led, "--fresh"))  # closed now: replaced
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".led.removing-*"))


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    one_line_error(cli("demo", "--datadir", "/proc/nope/x"), "/proc/nope")
    one_line_error(cli("dnn-demo", "--threshold", "2000"), "--threshold: must be in 1..1000")
    one_line_error(cli("demo", "--shards", "0"), "--shards")
    one_line_error(cli("demo", "--seed", "-3"), "--seed")
    one_line_error(cli("node", "state", "--account", "0x12"), "64 hex digits")
    import torch

    if not torch.cuda.is_available():
        done = cli("dnn-demo", "--device", "cuda", "--datadir", str(tmp_path / "n"))
        one_line_error(done, "CUDA is not available")
        assert not (tmp_path / "n").exists()


def test_a_closed_pipe_and_ctrl_c_are_quiet(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "lazyledger.cli", *small_demo(tmp_path / "d")]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.readline().startswith("created")
        p.stdout.close()  # like `| head -1`
        err = p.stderr.read()
        assert p.wait(timeout=300) == 141
    assert err == ""
    # Ctrl-C in a terminal interrupts the whole foreground process group
    big = [*cmd[:3], *small_demo(tmp_path / "d", "--fresh", "--blocks", "100000")]
    with subprocess.Popen(
        big, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as p:
        assert p.stdout is not None and p.stdout.readline().startswith("created")
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=300)
        assert p.returncode == 130
    assert err == "interrupted\n"


def _optional_modules() -> tuple[str, ...]:
    """Top-level modules of every package the extras add and the base install does not have."""
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    dist = lambda req: re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower()  # noqa: E731
    base = {dist(r) for r in project["project"]["dependencies"]}
    named = {"scikit-learn": "sklearn", "py-evm": "eth", "pynacl": "nacl",
             "import-linter": "importlinter"}  # fmt: skip
    extras = {dist(r) for reqs in project["project"]["optional-dependencies"].values()
              for r in reqs if not r.startswith("lazyledger")}  # fmt: skip
    return tuple(sorted(named.get(d, d.replace("-", "_")) for d in extras - base))


OPTIONAL = _optional_modules()
BLOCKER = f"""
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"no module named {{name!r}} (an extra, not installed)")
        return None
sys.meta_path.insert(0, _Absent())
from lazyledger.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_quickstart_needs_only_the_base_dependencies(tmp_path: Path) -> None:
    """``pip install -e . && lazyledger demo``: with every optional package hidden (the
    extras ``dnn``, ``bench``, ``node``, ``ray``, ``evm``, ``test``), the demo still runs."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, *small_demo(tmp_path / "d")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replay_all" in done.stdout or done.stdout.strip()
