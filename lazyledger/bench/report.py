"""The results folder: results.json, metrics.csv, one CSV per series, report.md, PNG plots and
manifest.json (versions, CPU, cores, settings)."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from lazyledger.bench.model import Result, Settings, Value
from lazyledger.bench.scenarios import (
    INGEST_TARGET,
    LAZY_TARGET,
    REPLAY_TARGET,
    SCENARIOS,
    cpu_count,
)

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


def targets(results: Sequence[Result]) -> list[tuple[str, str, str, Value]]:
    """Issue 2's targets: (target, measured, how, met)."""
    by = {r.name: r.metrics for r in results if r.status == "ok"}
    rows: list[tuple[str, str, str, Value]] = []
    if "ingestion" in by:
        m = by["ingestion"]
        rows.append(
            (
                f"ingestion >= {INGEST_TARGET:,.0f} signed tx/s on 2 cores",
                f"{fmt(m['tx_s_workers2'])} tx/s (workers=2, a commit per block); "
                f"{fmt(m['tx_s_workers1'])} (workers=1); "
                f"{fmt(m['tx_s_workers2_batched'])} (workers=2, "
                f"{fmt(m['batch_blocks'])} blocks per group commit)",
                "ingestion.tx_s_workers2",
                m["target_met"],
            )
        )
    if "replay" in by:
        m = by["replay"]
        rows.append(
            (
                f"Numba replay >= {REPLAY_TARGET:.0f}x pure Python",
                f"{fmt(m['replay_rows_over_python'])}x via replay_rows; kernel alone "
                f"{fmt(m['kernel_over_python'])}x",
                "replay.replay_rows_over_python (ledger path) / kernel_over_python",
                f"ledger path {fmt(m['target_met'])}; kernel "
                f"{fmt(float(m['kernel_over_python'] or 0) >= REPLAY_TARGET)}",
            )
        )
    lazy: list[float] = []
    parts: list[str] = []
    if "chain_length" in by:
        v = by["chain_length"]["longest_ratio_to_ideal"]
        if isinstance(v, float):
            lazy.append(v)
            parts.append(f"clusters chain: {fmt(v)}x")
    if "slice_fraction" in by:
        m = by["slice_fraction"]
        mx = m["ratio_to_ideal_max"]
        if isinstance(mx, float):
            lazy.append(mx)
            parts.append(
                f"slice fractions: {fmt(m['ratio_to_ideal_min'])}x .. {fmt(mx)}x "
                f"({m['points_within_2x']}/{m['points']} points within 2x)"
            )
    if lazy:
        rows.append(
            (
                f"lazy cost <= {LAZY_TARGET:.0f}x (slice/chain) x eager",
                "; ".join(parts),
                "lazy cold p50 / (fraction x replay_all p50)",
                max(lazy) <= LAZY_TARGET,
            )
        )
    return rows


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
        "## Issue 2 targets",
        "",
        "| target | measured | metric | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t} | {v} | {how} | {fmt(ok)} |" for t, v, how, ok in targets(results)]
    lines += ["", "## Scenarios", ""]
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


def _col(rows: Sequence[dict[str, Value]], key: str) -> list[float]:
    """One numeric column of a series (nan where missing)."""
    return [
        float(v) if isinstance(v, int | float) else float("nan") for v in (r.get(key) for r in rows)
    ]


def _plots(out: Path, results: Sequence[Result]) -> dict[str, str]:
    """PNG plots of the scenarios that have something to draw; returns file names by scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done: dict[str, str] = {}
    by = {r.name: r for r in results if r.status == "ok"}

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        done[name] = f"{name}.png"

    if "chain_length" in by:
        pts = by["chain_length"].series["points"]
        x = _col(pts, "chain_txs")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(x, _col(pts, "eager_p50_ms"), "s-", label="eager replay_all p50")
        ax.plot(x, _col(pts, "cold_p50_ms"), "o-", label="lazy state, cold p50")
        ax.fill_between(
            x, _col(pts, "cold_p50_ms"), _col(pts, "cold_p99_ms"), alpha=0.2,
            label="lazy cold p50..p99",
        )  # fmt: skip
        ax.plot(x, _col(pts, "warm_p50_ms"), "^-", label="lazy state, warm p50")
        ax.set(xscale="log", yscale="log", xlabel="chain length (txs)", ylabel="ms")
        ax.set_title(f"cost vs chain length, slice fixed at {pts[-1]['slice_txs']} txs")
        ax.legend(fontsize=8)
        save(fig, "chain_length")
    if "slice_fraction" in by:
        r = by["slice_fraction"]
        pts = r.series["points"]
        eager_ms = float(r.metrics["eager_p50_ms"] or 0)
        fr = _col(pts, "slice_fraction")
        lo, hi = min(fr) / 2, 1.0
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([lo, hi], [eager_ms, eager_ms], "k-", label="eager replay_all p50")
        ax.plot([lo, hi], [lo * eager_ms, hi * eager_ms], "k--", label="ideal: fraction x eager")
        ax.fill_between(
            [lo, hi], [lo * eager_ms, hi * eager_ms], [2 * lo * eager_ms, 2 * hi * eager_ms],
            alpha=0.15, color="g", label="target: within 2x of ideal",
        )  # fmt: skip
        ax.plot(fr, _col(pts, "cold_p50_ms"), "o", label="lazy state, cold p50")
        ax.set(xscale="log", yscale="log", xlabel="slice fraction of the chain", ylabel="ms")
        ax.set_title(f"cost vs slice fraction ({r.metrics['chain_txs']} txs)")
        ax.legend(fontsize=8)
        save(fig, "slice_fraction")
    if "ingestion" in by:
        m = by["ingestion"].metrics
        names = ["lazyledger\nworkers=1", "lazyledger\nworkers=2", "py-evm\nmine_all"]
        vals = [m["tx_s_workers1"], m["tx_s_workers2"], m["evm_tx_s"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar(names, [float(v) if isinstance(v, float | int) else 0.0 for v in vals])
        ax.axhline(INGEST_TARGET, color="r", ls="--", label="target 25,000 tx/s")
        ax.set(yscale="log", ylabel="tx/s", title="ingestion (validate+store) vs eager import")
        ax.legend(fontsize=8)
        save(fig, "ingestion")
    if "replay" in by:
        m = by["replay"].metrics
        names = ["pure Python\nops.apply", "replay_rows", "Numba kernel", "memory bound\n(copy)"]
        keys = [
            "python_transfers_s", "replay_rows_transfers_s", "numba_kernel_transfers_s",
            "memory_bound_transfers_s",
        ]  # fmt: skip
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar(names, [float(m[k] or 0) for k in keys])
        ax.set(yscale="log", ylabel="transfers/s", title="replay throughput")
        save(fig, "replay")
    if "shapes" in by:
        pts = by["shapes"].series["points"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        names = [str(p["shape"]) for p in pts]
        a1.bar(names, _col(pts, "eager_over_lazy"))
        a1.set(yscale="log", ylabel="eager p50 / lazy cold p50", title="what laziness saves")
        a2.bar(names, _col(pts, "mean_slice_fraction"))
        a2.set(ylabel="mean slice fraction", title="slice size by shape")
        save(fig, "shapes")
    if "storage" in by:
        m = by["storage"].metrics
        parts = ["bodies", "rows", "headers", "free"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, wl in enumerate(("uniform", "ethereum")):
            ax.bar(
                [x + 0.4 * k for x in range(len(parts))],
                [float(m[f"{wl}_{p}_bytes_per_tx"] or 0) for p in parts],
                width=0.4,
                label=f"{wl} ({float(m[f'{wl}_disk_over_canonical'] or 0):.2f}x canonical)",
            )
        ax.set_xticks([x + 0.2 for x in range(len(parts))], parts)
        ax.set(ylabel="bytes / tx (LMDB pages)", title="storage by table")
        ax.legend(fontsize=8)
        save(fig, "storage")
    return done
