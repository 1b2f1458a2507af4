"""Value types of a benchmark run: its settings, the result of one scenario, and what a scenario
declares (its parameters per profile, the metrics it reports, its targets and its plot)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lazyledger.model import Genesis

Value = float | int | str | bool | None
"""A metric value; None means "not measured" (the scenario or part of it was skipped)."""
Params = dict[str, Any]
"""A scenario's parameters for one profile (JSON-like: they are written to manifest.json)."""
PROFILES = ("tiny", "quick", "full")
"""Size profiles: smoke-test sizes (tests), about a minute or three, the full run."""


@attrs.frozen
class Settings:
    """What one run measures: a size profile, a seed, the scenarios, where results go."""

    profile: str  # one of PROFILES
    seed: int
    scenarios: tuple[str, ...]
    out: str
    progress: bool = True
    profile_hot_paths: bool = True  # cProfile the ingestion and the lazy query
    trace: str | None = None  # a CSV trace the realistic scenario replays instead of its generator


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
    status: str = "ok"  # "ok", "skipped" or "failed"
    seconds: float = 0.0

    def put(self, name: str, value: Value, unit: str = "") -> None:
        """Record one headline metric."""
        self.metrics[name] = value
        if unit:
            self.units[name] = unit

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class Context:
    """Shared state of one run: settings, a scratch directory, the results folder."""

    settings: Settings
    scratch: Path
    out: Path
    blocks_cache: dict[tuple[Any, ...], tuple[Genesis, list[bytes]]] = attrs.field(factory=dict)
    _n: int = 0

    @property
    def on(self) -> bool:
        return self.settings.progress

    def path(self, name: str) -> Path:
        """A fresh scratch path for one ledger."""
        self._n += 1
        return self.scratch / f"{self._n:03d}-{name}"


@attrs.frozen
class Target:
    """A threshold one of a scenario's metrics should reach, and the issue that set it.

    ``also`` names metrics of the same scenario that the report prints beside the value."""

    metric: str
    direction: Literal[">=", "<="]
    threshold: float
    what: str
    issue: int | None = None
    also: tuple[str, ...] = ()

    def met(self, value: Value) -> bool | None:
        """Whether ``value`` meets the target; None when it was not measured."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return None
        return value >= self.threshold if self.direction == ">=" else value <= self.threshold

    def met_by(self, metrics: Mapping[str, Value]) -> bool | None:
        """Whether a result's metrics meet the target; None when its metric is missing."""
        return self.met(metrics.get(self.metric))


Plot = Callable[[Result], "Figure"]
"""Draws a figure from a scenario's ok result (the report saves it as ``<scenario>.png``)."""


@attrs.frozen
class Scenario:
    """A named measurement: its parameters per profile, how it runs, the metrics it must emit,
    its targets and its plot. A scenario module declares one as ``SCENARIO``."""

    name: str
    title: str
    run: Callable[[Context, Params], Result]
    params: Mapping[str, Params]
    metrics: tuple[str, ...]
    targets: tuple[Target, ...] = ()
    plot: Plot | None = None
    default_in: tuple[str, ...] = PROFILES
