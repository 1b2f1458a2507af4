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
