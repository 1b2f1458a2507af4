"""bench/gpu_check.py runs anywhere: without CUDA it reports that and exits cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the script runs the full check")
def test_gpu_check_without_cuda(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
    out = tmp_path / "g.json"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True, check=True
    )
    summary = json.loads(out.read_text())
    assert summary["cuda"] is False and summary["torch"] == torch.__version__
    assert json.loads(done.stdout) == summary
