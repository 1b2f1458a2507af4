"""What the scenarios declare is complete and consistent, and the report is built from it:
parameters for every profile, targets on reported metrics, one module per scenario in a fixed
order, and target rows whose verdicts follow the declared thresholds and directions."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from lazyledger.bench import report
from lazyledger.bench.model import PROFILES, Result, Scenario, Target
from lazyledger.bench.scenarios import MODULES, SCENARIOS, defaults
from lazyledger.cli import main

TARGETED = [name for name, sc in SCENARIOS.items() if sc.targets]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_profile_has_params(name: str) -> None:
    sc = SCENARIOS[name]
    assert tuple(sc.params) == PROFILES, name
    for profile in PROFILES:
        params = sc.params[profile]
        assert params, (name, profile)
        assert json.loads(json.dumps(params)) == params, (name, profile)  # manifest.json
    assert set(sc.default_in) <= set(PROFILES), name


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_targets_name_reported_metrics(name: str) -> None:
    sc = SCENARIOS[name]
    assert len(set(sc.metrics)) == len(sc.metrics), name
    for t in sc.targets:
        assert t.metric in sc.metrics, (name, t.metric)
        assert set(t.also) <= set(sc.metrics), (name, t.metric, t.also)
        assert t.direction in (">=", "<="), (name, t)
        assert math.isfinite(t.threshold), (name, t)


def test_one_module_per_scenario_in_a_fixed_order() -> None:
    names = [m.SCENARIO.name for m in MODULES]
    assert names == list(SCENARIOS)
    for module in MODULES:
        assert isinstance(module.SCENARIO, Scenario)
        assert module.__name__ == f"lazyledger.bench.scenarios.{module.SCENARIO.name}"
    assert defaults("tiny")[:4] == ("chain_length", "slice_fraction", "ingestion", "replay")
    assert "dnn" not in defaults("tiny") and "dnn" in defaults("full")


@pytest.mark.parametrize(
    ("target", "value", "met"),
    [
        (Target("m", ">=", 50, "x"), 50, True),
        (Target("m", ">=", 50, "x"), 49.9, False),
        (Target("m", "<=", 2, "x"), 2.0, True),
        (Target("m", "<=", 2, "x"), 2.01, False),
        (Target("m", "<=", 2, "x"), None, None),
        (Target("m", "<=", 2, "x"), True, None),  # a flag is not a figure
        (Target("m", ">=", 2, "x"), float("nan"), None),
        (Target("m", ">=", 2, "x"), "fast", None),
    ],
)
def test_target_verdict(target: Target, value: float | None, met: bool | None) -> None:
    assert target.met(value) is met


def _result(name: str, side: str) -> Result:
    """An ok result of ``name`` whose targeted metrics sit on ``side`` ("met" or "missed") of
    their thresholds, every other declared metric 1."""
    sc = SCENARIOS[name]
    r = Result(name, sc.title, sc.params["tiny"])
    for m in sc.metrics:
        r.put(m, 1)
    for t in sc.targets:
        up = (t.direction == ">=") == (side == "met")
        r.put(t.metric, t.threshold * (1.5 if up else 0.5) + (1 if up else -1), "u")
    return r


@pytest.mark.parametrize("side", ["met", "missed"])
def test_report_targets_follow_the_declarations(side: str) -> None:
    results = [_result(name, side) for name in TARGETED]
    rows = report.targets(results)
    declared = [
        (t.issue, f"{r.name}.{t.metric}") for r in results for t in SCENARIOS[r.name].targets
    ]
    assert [(issue, how) for issue, table in rows.items() for _, _, how, _ in table] == sorted(
        declared, key=lambda x: (x[0] is None, x[0] or 0)
    )
    assert all(ok is (side == "met") for table in rows.values() for *_, ok in table)
    assert 2 in rows  # issue 2's targets head the report
    for r in results:
        r.status = "skipped"  # a skipped or failed scenario has no verdict
    assert report.targets(results) == {}


def test_report_names_no_scenario() -> None:
    source = Path(report.__file__).read_text()
    for name in SCENARIOS:
        assert not re.search(rf"[\"']{name}[\"']", source), name


def test_a_scenario_run_only_when_named(tmp_path: Path) -> None:
    """``touch`` is in no default run; named, it runs and reports every metric it declares."""
    assert all("touch" not in defaults(p) for p in PROFILES)
    out = tmp_path / "run"
    assert main(["bench", "--tiny", "--scenario", "touch", "--out", str(out), "--no-progress"]) == 0
    (run,) = json.loads((out / "results.json").read_text())
    assert run["status"] == "ok", run["notes"]
    assert all(run["metrics"][m] is not None for m in SCENARIOS["touch"].metrics)
    assert [row["mean_block"] for row in run["series"]["ingestion"]] == [15, 200]
    assert run["series"]["proofs"][0]["proofs"] == SCENARIOS["touch"].params["tiny"]["sample"]
    assert (out / "touch_ingestion.csv").is_file()
