"""The package's layers read bottom-up: ``.importlinter`` states the order (errors < model,
codec, crypto, shards' layout and hashing < ops < validate, touches, transactions < store,
tables, chain, shards' store and reader < materialize < ledger, ingest < client, scale,
workloads < cli, node, bench) and import-linter checks every import against it,
function-local and ``TYPE_CHECKING`` ones included."""

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
    """Every module and package of ``lazyledger`` sits in a layer; ``shards``, whose parts sit
    in three layers, names each of its modules instead (its ``__init__`` re-exports only the
    bottom one: import-linter follows the chain through it)."""
    text = (ROOT / ".importlinter").read_text()
    layers = text.split("\nlayers =", 1)[1]
    named = {n.strip() for line in layers.splitlines() for n in line.replace("|", ":").split(":")}
    root = ROOT / "lazyledger"
    here = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    here |= {p.name for p in root.iterdir() if (p / "__init__.py").exists() and p.name != "shards"}
    here |= {f"shards.{p.stem}" for p in (root / "shards").glob("*.py") if p.stem != "__init__"}
    assert here <= named, here - named
