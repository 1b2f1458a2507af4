"""Scenarios measured by a package module run as a subprocess (``python -m lazyledger.bench.X
--json F ...``): a missing extra or a failed run is recorded as skipped, with the reason."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from lazyledger.bench.model import Context, Result


def importable(module: str) -> bool:
    """Whether ``module`` can be imported here (its package and extra are installed)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def skip(r: Result, why: str, metrics: Sequence[str]) -> Result:
    """Mark ``r`` skipped for ``why``, every metric of ``metrics`` not measured."""
    r.status = "skipped"
    r.notes.append(why)
    for m in metrics:
        r.put(m, None)
    return r


def flags(args: dict[str, Any]) -> list[str]:
    """``{"accounts": 40}`` as ``["--accounts", "40"]``, in the mapping's (declared) order."""
    return [str(a) for kv in args.items() for a in (f"--{kv[0]}", kv[1])]


def run_module(
    ctx: Context,
    module: str,
    json_name: str,
    args: Sequence[str],
    timeout_s: float,
    *,
    any_status: bool = False,
) -> tuple[dict[str, Any] | None, list[str], str]:
    """Run ``python -m module --json <out>/json_name *args``; return (its JSON document or None,
    the command line, why it failed or ""). With ``any_status`` a written document counts
    whatever the exit status (a module whose status reports a verdict, not a crash)."""
    out = ctx.out / json_name
    cmd = [sys.executable, "-m", module, "--json", str(out), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if not out.exists() or (done.returncode != 0 and not any_status):
        tail = (done.stderr or done.stdout)[-400:]
        return None, cmd, f"skipped: {module} failed ({done.returncode}): {tail}"
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc, cmd, ""
