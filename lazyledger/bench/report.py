"""The results folder: results.json, metrics.csv, one CSV per series, report.md, PNG plots and
manifest.json (versions, CPU, cores, settings).

Everything scenario-specific comes from what the scenarios declare (their targets and plots in
:mod:`lazyledger.bench.scenarios`); nothing here names a scenario."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from lazyledger.bench.model import Result, Settings, Target, Value
from lazyledger.bench.scenarios import SCENARIOS

PACKAGES = (
    "numba", "numpy", "lmdb", "blake3", "pynacl", "zstandard", "attrs",
    "matplotlib", "tqdm", "py-evm", "coincurve", "eth-hash",
)  # fmt: skip


def fmt(v: Any) -> str:
    """A metric value for a Markdown table."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def cpu_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> dict[str, str]:
    """The commit of a source checkout running the suite; nothing from an installed copy."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists() or not (root / "pyproject.toml").is_file():
        return {}  # installed: the folder above the package is not our repository
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head, "dirty": "yes" if dirty else "no"}


def manifest(settings: Settings, started: float, argv: Sequence[str]) -> dict[str, Any]:
    """Versions, machine and settings of a run."""
    import lazyledger

    versions = {"python": platform.python_version(), "lazyledger": lazyledger.__version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "command": "lazyledger bench " + " ".join(argv),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "settings": attrs.asdict(settings),
        "params": {n: SCENARIOS[n].params[settings.profile] for n in settings.scenarios},
        "machine": {
            "cpu": _cpu_model(),
            "cores_usable": cpu_count(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "versions": versions,
        "git": _git(),
    }


def write(
    out: Path, settings: Settings, results: list[Result], started: float, argv: Sequence[str]
) -> None:
    """Write every file of the results folder."""
    man = manifest(settings, started, argv)
    (out / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
    (out / "results.json").write_text(
        json.dumps([r.to_json() for r in results], indent=2, default=str) + "\n"
    )
    with (out / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "status", "metric", "value", "unit"])
        for r in results:
            for k, v in r.metrics.items():
                w.writerow([r.name, r.status, k, "" if v is None else v, r.units.get(k, "")])
    for r in results:
        for name, rows in r.series.items():
            if not rows:
                continue
            keys = list(dict.fromkeys(k for row in rows for k in row))
            with (out / f"{r.name}_{name}.csv").open("w", newline="") as f:
                dw = csv.DictWriter(f, keys)
                dw.writeheader()
                dw.writerows(rows)
    plots = _plots(out, results)
    (out / "report.md").write_text(markdown(man, results, plots))


def _declared_targets(results: Sequence[Result]) -> Iterator[tuple[Result, Target]]:
    """Each ok result with each target its scenario declares, in run order."""
    for r in results:
        if r.status == "ok":
            for t in SCENARIOS[r.name].targets:
                yield r, t


def targets(results: Sequence[Result]) -> dict[int | None, list[tuple[str, str, str, Value]]]:
    """The declared targets of the scenarios that ran, by issue: (target, measured, metric,
    met) rows; met is None where the metric was not measured."""
    rows: dict[int | None, list[tuple[str, str, str, Value]]] = {}
    for r, t in _declared_targets(results):
        value = r.metrics.get(t.metric)
        measured = f"{fmt(value)} {r.units.get(t.metric, '')}".strip()
        beside = [f"{m} {fmt(r.metrics.get(m))}" for m in t.also]
        if beside:
            measured += f" ({'; '.join(beside)})"
        rows.setdefault(t.issue, []).append(
            (
                f"{t.what} {t.direction} {fmt(t.threshold)}",
                measured,
                f"{r.name}.{t.metric}",
                t.met(value),
            )
        )
    return dict(sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def markdown(man: dict[str, Any], results: Sequence[Result], plots: dict[str, str]) -> str:
    """The human-readable report."""
    m = man["machine"]
    lines = [
        "# lazyledger benchmark report",
        "",
        f"`{man['command']}` — {man['started']}, {man['duration_s']} s, profile "
        f"`{man['settings']['profile']}`, seed {man['settings']['seed']}",
        "",
        f"Machine: {m['cpu']}, {m['cores_usable']} usable cores; Python "
        f"{man['versions']['python']}, numba {man['versions']['numba']}, py-evm "
        f"{man['versions']['py-evm']}; 1/5/15-min load average at the end "
        f"{man['load_average_at_end']} (other work on the machine skews every figure).",
        "",
    ]
    for issue, table in targets(results).items():
        lines += [f"## Issue {issue} targets" if issue is not None else "## Other targets", ""]
        lines += ["| target | measured | metric | met |", "|---|---|---|---|"]
        lines += [f"| {t} | {v} | {how} | {fmt(ok)} |" for t, v, how, ok in table]
        lines.append("")
    lines += ["## Scenarios", ""]
    for r in results:
        lines += [f"### {r.name} — {r.title}", ""]
        lines.append(f"status: {r.status}; {r.seconds:.1f} s; params `{json.dumps(r.params)}`")
        lines.append("")
        if r.metrics:
            lines += ["| metric | value | unit |", "|---|---|---|"]
            lines += [f"| {k} | {fmt(v)} | {r.units.get(k, '')} |" for k, v in r.metrics.items()]
            lines.append("")
        for name, rows in r.series.items():
            if not rows:
                continue
            keys = list(dict.fromkeys(k for row in rows for k in row))
            lines += [f"{name}:", "", "| " + " | ".join(keys) + " |"]
            lines.append("|" + "---|" * len(keys))
            lines += ["| " + " | ".join(fmt(row.get(k)) for k in keys) + " |" for row in rows]
            lines.append("")
        if r.name in plots:
            lines += [f"![{r.name}]({plots[r.name]})", ""]
        lines += [f"> {n.strip()}" if "\n" not in n.strip() else f"```\n{n}\n```" for n in r.notes]
        lines.append("")
    return "\n".join(lines)


def _plots(out: Path, results: Sequence[Result]) -> dict[str, str]:
    """PNG plots of the ok scenarios that declare one; returns file names by scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done: dict[str, str] = {}
    for r in results:
        draw = SCENARIOS[r.name].plot
        if r.status != "ok" or draw is None:
            continue
        fig = draw(r)
        fig.tight_layout()
        fig.savefig(out / f"{r.name}.png", dpi=110)
        plt.close(fig)
        done[r.name] = f"{r.name}.png"
    return done
