"""``lazyledger bench`` picks its size profile by name or by flag, and lists what it would run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lazyledger.bench.scenarios import SCENARIOS
from lazyledger.cli import main


@pytest.mark.parametrize(
    ("args", "profile"),
    [([], "full"), (["--quick"], "quick"), (["--tiny"], "tiny"), (["--profile", "tiny"], "tiny")],
)
def test_list_shows_the_profile_params(
    args: list[str], profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--list", *args]) == 0
    out = capsys.readouterr().out
    for name, sc in SCENARIOS.items():
        assert f"{name:15} {sc.title}\n{'':15} {sc.params[profile]}" in out, name


def test_profile_by_name_runs_the_named_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["bench", "--profile", "tiny", "--scenario", "ethereum", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["profile"] == "tiny"
    assert manifest["settings"]["scenarios"] == ["ethereum"]
    assert manifest["params"] == {"ethereum": SCENARIOS["ethereum"].params["tiny"]}


def test_profile_and_a_size_flag_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--profile", "quick", "--tiny", "--list"])
    assert stop.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_realistic_replays_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--trace`` makes the realistic scenario replay a CSV trace; a trace that cannot apply
    is a one-line error before anything runs."""
    from lazyledger.workloads import ZERO_VALUE, EthereumLike

    rows = ["block,from,to,value"]
    for b, picks in enumerate(EthereumLike(seed=2).picks(1500)):
        rows += [f"{b},0x{s:x},0x{t:x},{0 if a == ZERO_VALUE else a}" for s, t, a in picks]
    trace = tmp_path / "trace.csv"
    trace.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    argv = ["bench", "--tiny", "--scenario", "realistic", "--no-progress", "--out", str(out)]
    assert main([*argv, "--trace", str(trace)]) == 0
    (results,) = json.loads((out / "results.json").read_text())
    assert results["status"] == "ok"
    assert results["metrics"]["txs"] == 1500
    assert results["metrics"]["queries_agree"] is True
    assert any("trace" in note for note in results["notes"])
    capsys.readouterr()
    (tmp_path / "bad.csv").write_text("block,from,to\n1,a,\n")
    for args, problem in (
        ([*argv, "--trace", str(tmp_path / "bad.csv")], "bad.csv:2: an empty 'from' or 'to'"),
        ([*argv, "--trace", str(tmp_path / "none.csv")], "none.csv: not a file"),
        (["bench", "--tiny", "--scenario", "replay", "--trace", str(trace)], "realistic scenario"),
    ):
        assert main(args) == 2
        assert problem in capsys.readouterr().err
