"""The registry of benchmark scenarios: one module per scenario, each declaring its
:class:`~lazyledger.bench.model.Scenario` as ``SCENARIO`` (parameters per profile, run, metrics,
targets, plot). ``MODULES`` lists them explicitly; its order is the order of a run and of the
report. Every ratio is taken inside one scenario, side by side, on one machine in one run."""

from __future__ import annotations

from types import ModuleType

from lazyledger.bench.model import Scenario
from lazyledger.bench.scenarios import (
    batch,
    chain_length,
    dnn,
    ethereum,
    ingestion,
    node,
    private,
    realistic,
    replay,
    shapes,
    slice_fraction,
    storage,
    touch,
)

MODULES: tuple[ModuleType, ...] = (
    chain_length,
    slice_fraction,
    ingestion,
    replay,
    storage,
    shapes,
    realistic,
    batch,
    ethereum,
    dnn,
    private,
    node,
    touch,
)


def _declared(module: ModuleType) -> Scenario:
    sc = module.SCENARIO
    if not isinstance(sc, Scenario):
        raise TypeError(f"{module.__name__}.SCENARIO is not a Scenario")
    return sc


SCENARIOS: dict[str, Scenario] = {sc.name: sc for sc in map(_declared, MODULES)}
"""Every scenario by name, in ``MODULES`` order."""

EXPECTED_SECONDS = {"tiny": 15, "quick": 60, "full": 390}
"""Rough wall-clock per profile on a 2-core machine (stated to the user, not measured here)."""


def defaults(profile: str) -> tuple[str, ...]:
    """Scenarios a run of ``profile`` measures when none are named."""
    return tuple(n for n, s in SCENARIOS.items() if profile in s.default_in)
