"""The command line's main job, run the way the README's quickstart runs it."""

from __future__ import annotations

import subprocess
import sys
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
    assert "creating a 4-shard ledger" in done.stdout


def test_dnn_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["dnn-demo", "--datadir", str(tmp_path / "n"), "--device", "cpu", "--epochs", "25"])
        == 0
    )
    out = capsys.readouterr().out
    assert "claim accepted; provider balance 1000" in out
