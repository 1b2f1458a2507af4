"""Value types of a benchmark run: its settings and the result of one scenario."""

from __future__ import annotations

from typing import Any

import attrs

Value = float | int | str | bool | None
"""A metric value; None means "not measured" (the scenario or part of it was skipped)."""


@attrs.frozen
class Settings:
    """What one run measures: a size profile, a seed, the scenarios, where results go."""

    profile: str  # "tiny", "quick" or "full"
    seed: int
    scenarios: tuple[str, ...]
    out: str
    progress: bool = True
    profile_hot_paths: bool = True  # cProfile the ingestion and the lazy query


@attrs.define
class Result:
    """The outcome of one scenario: headline metrics, per-point series, and notes."""

    name: str
    title: str
    params: dict[str, Any]
    metrics: dict[str, Value] = attrs.field(factory=dict)
    units: dict[str, str] = attrs.field(factory=dict)
    series: dict[str, list[dict[str, Value]]] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    status: str = "ok"  # "ok" or "skipped"
    seconds: float = 0.0

    def put(self, name: str, value: Value, unit: str = "") -> None:
        """Record one headline metric."""
        self.metrics[name] = value
        if unit:
            self.units[name] = unit

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)
