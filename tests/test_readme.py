"""Every ```python block of README.md runs as written: each in a fresh interpreter, in an empty
folder, with nothing defined beforehand. A snippet that names something it never defines, or
whose asserts no longer hold, fails here, so README and code cannot drift apart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def snippets() -> list[tuple[str, str]]:
    """(the heading above it, its code) for each python block, in order."""
    text = README.read_text()
    out = []
    for found in _BLOCK.finditer(text):
        heading = re.findall(r"^#+ (.+)$", text[: found.start()], re.M)
        out.append((heading[-1] if heading else "top", found.group(1)))
    return out


def test_the_readme_has_its_snippets() -> None:
    names = [name for name, _ in snippets()]
    assert {"Embedding", "Private transactions", "DNN jobs with uncertain results"} <= set(names)


@pytest.mark.parametrize(("heading", "code"), snippets(), ids=[name for name, _ in snippets()])
def test_snippet_runs_as_written(heading: str, code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"README snippet under {heading!r} failed:\n{done.stderr[-3000:]}"
