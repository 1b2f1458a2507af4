"""The package's layers read bottom-up: ``.importlinter`` states the order (errors < model,
codec, crypto, shards < ops < validate, touches, transactions < store, tables, chain <
materialize < ledger, ingest < client, scale, workloads < cli, node, bench) and import-linter
checks every import against it, function-local and ``TYPE_CHECKING`` ones included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_runs_upward() -> None:
    tool = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(tool)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_every_module_has_a_layer() -> None:
    text = (ROOT / ".importlinter").read_text()
    layers = text.split("layers =", 1)[1]
    named = {n.strip() for line in layers.splitlines() for n in line.replace("|", ":").split(":")}
    here = {p.stem for p in (ROOT / "lazyledger").glob("*.py") if p.stem != "__init__"}
    here |= {p.name for p in (ROOT / "lazyledger").iterdir() if (p / "__init__.py").exists()}
    assert here <= named, here - named
