"""Run the selected scenarios and write the results folder."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from lazyledger.bench import report
from lazyledger.bench.model import Context, Result, Settings
from lazyledger.bench.scenarios import SCENARIOS


def run_suite(settings: Settings, argv: list[str] | None = None) -> Path:
    """Measure every scenario of ``settings`` and write the results folder; return its path.

    A scenario that raises is recorded as failed (with its traceback) and the run goes on."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: list[Result] = []
    scratch = Path(tempfile.mkdtemp(prefix="lazyledger-bench-"))
    try:
        ctx = Context(settings, scratch, out)
        for name in settings.scenarios:
            sc = SCENARIOS[name]
            params = sc.params[settings.profile]
            print(f"[bench] {name}: {sc.title}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                res = sc.run(ctx, params)
            except Exception:
                res = Result(name, sc.title, params, status="failed")
                res.notes.append(traceback.format_exc())
                print(res.notes[-1], file=sys.stderr)
            res.seconds = time.perf_counter() - t0
            if res.status == "skipped":
                print(f"[bench] {name}: {res.notes[-1]}", file=sys.stderr)
            results.append(res)
            # keep partial results on disk as the run goes
            (out / "results.json").write_text(
                json.dumps([r.to_json() for r in results], indent=2, default=str) + "\n"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.write(out, settings, results, started, argv or [])
    return out
