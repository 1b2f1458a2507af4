"""What scenario plots share: numeric columns of a series and metrics as numbers to draw.

Plot functions import ``matplotlib.pyplot`` when they run; the report selects the Agg backend
(files only, no display) before it calls any of them."""

from __future__ import annotations

from collections.abc import Sequence

from lazyledger.bench.model import Value


def column(rows: Sequence[dict[str, Value]], key: str) -> list[float]:
    """One numeric column of a series (nan where missing)."""
    return [
        float(v) if isinstance(v, int | float) else float("nan") for v in (r.get(key) for r in rows)
    ]


def number(v: Value) -> float:
    """A metric as a float for drawing (0 where it was not measured)."""
    return float(v) if isinstance(v, int | float) else 0.0
