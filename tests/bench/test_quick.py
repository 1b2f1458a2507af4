"""The benchmark suite runs end to end at smoke-test sizes and writes every file and metric.

No timing assertions: figures vary by machine; only the shape of the results is checked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lazyledger.bench.scenarios import SCENARIOS, defaults
from lazyledger.cli import main

CORE = ("chain_length", "slice_fraction", "ingestion", "replay", "storage", "shapes")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "run"
    assert main(["bench", "--tiny", "--out", str(out), "--no-progress"]) == 0
    return out


def test_files_exist_and_parse(results: Path) -> None:
    for name in ("results.json", "manifest.json", "metrics.csv", "report.md"):
        assert (results / name).is_file(), name
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["machine"]["cores_usable"] >= 1
    assert manifest["versions"]["numba"]
    assert manifest["settings"]["profile"] == "tiny"
    with (results / "metrics.csv").open() as f:
        assert len(list(csv.DictReader(f))) > 0
    runs = {r["name"]: r for r in json.loads((results / "results.json").read_text())}
    drawn = {n for n, sc in SCENARIOS.items() if sc.plot and runs.get(n, {}).get("status") == "ok"}
    assert drawn >= {"chain_length", "slice_fraction", "ingestion", "replay", "shapes", "storage"}
    for plot in drawn:
        assert (results / f"{plot}.png").stat().st_size > 0, plot
    report = (results / "report.md").read_text()
    assert "## Issue 2 targets" in report and "## Issue 9 targets" in report
    for name, run in runs.items():  # every declared target of a scenario that ran is judged
        for t in SCENARIOS[name].targets if run["status"] == "ok" else ():
            assert f"| {name}.{t.metric} |" in report, (name, t.metric)


def test_every_metric_present(results: Path) -> None:
    runs = {r["name"]: r for r in json.loads((results / "results.json").read_text())}
    assert set(runs) == set(defaults("tiny"))
    for name, run in runs.items():
        assert run["status"] in ("ok", "skipped"), (name, run["notes"])
        missing = set(SCENARIOS[name].metrics) - set(run["metrics"])
        assert not missing, (name, missing)
    optional = {"evm_tx_s", "evm_txs", "lazyledger_over_evm"}  # None when py-evm is absent
    for name in CORE:
        run = runs[name]
        assert run["status"] == "ok", name
        for metric in SCENARIOS[name].metrics:
            if metric not in optional:
                assert run["metrics"][metric] is not None, (name, metric)
    assert runs["chain_length"]["metrics"]["agrees"] is True
    assert runs["replay"]["metrics"]["agrees"] is True
    assert runs["slice_fraction"]["metrics"]["agrees"] is True


def test_ethereum_side_by_side(results: Path) -> None:
    """The Ethereum-like chain's aggregates sit next to the real window's in the report."""
    runs = {r["name"]: r for r in json.loads((results / "results.json").read_text())}
    eth = runs["ethereum"]
    assert eth["status"] == "ok", eth["notes"]
    assert all(eth["metrics"][m] is not None for m in SCENARIOS["ethereum"].metrics)
    assert eth["metrics"]["slice_agrees"] is True
    assert eth["metrics"]["failed_share"] == 0
    assert {row["aggregate"] for row in eth["series"]["aggregates"]} >= {"accounts", "slice_p50"}
    assert "| aggregate | real_2017 | n=" in (results / "report.md").read_text()
