"""DESIGN.md and README.md stay true to the code and to the repository: the tables, op codes,
codec magics and row size DESIGN.md states are the code's, and README points only at files
that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from lazyledger import codec
from lazyledger.materialize.rows import ROW
from lazyledger.ops import Op
from lazyledger.store import SCHEMA_VERSION, TABLES
from lazyledger.tables import markdown

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "DESIGN.md").read_text()
README = (ROOT / "README.md").read_text()


def test_design_states_the_storage_tables() -> None:
    for t in TABLES:
        assert re.search(rf"^\| {t.name} \| {t.env} \|", DESIGN, re.M), t.name
    assert f"schema version {SCHEMA_VERSION}" in DESIGN


def test_design_table_list_is_the_registry_s() -> None:
    """DESIGN.md's storage table list is, line for line, what ``lazyledger.tables`` declares:
    names, environments, key and value codecs (regenerate it with ``tables.markdown()``)."""
    assert markdown() in DESIGN


def test_design_states_op_codes_codec_magics_and_row_size() -> None:
    for op in Op:
        if op is Op.PRIVATE:
            assert f"| private | {int(op)} |" in DESIGN
        else:
            assert f"| {op.name.lower()} | {int(op)} |" in DESIGN, op
    for magic in (codec.TX_MAGIC, codec.HEADER_MAGIC, codec.BLOCK_MAGIC, codec.GENESIS_MAGIC):
        assert f'"{magic[:3].decode()}" {magic[3]:02x}' in DESIGN
    assert f"{ROW.size}-byte row" in DESIGN


def test_design_keeps_the_section_the_materialisation_work_writes() -> None:
    assert re.search(r"^## Slices and checkpoints$", DESIGN, re.M)


def test_readme_points_only_at_files_in_the_repository() -> None:
    assert "shared/" not in README and "/work/" not in README
    links = re.findall(r"\]\(([^)#]+)\)", README)
    paths = re.findall(r"`((?:lazyledger|bench|tests|DESIGN)[\w./-]*\.(?:py|md|png))`", README)
    assert links and paths
    for target in [*links, *paths]:
        if "://" not in target:
            assert (ROOT / target).exists(), target
