"""Materialisation beyond one machine: :class:`RayExecutor` runs ``Ledger.states`` on a Ray
cluster whose actors read replicas (followers' datadirs) with read-only handles. Above the
ledger layer; Ray itself is imported only when an executor starts (the optional ``ray`` extra)."""

from lazyledger.ledger import EXECUTORS
from lazyledger.scale.ray_executor import RAY_ADDRESS_ENV, RayExecutor, RayUnavailable

EXECUTORS["ray"] = RayExecutor

__all__ = ["RAY_ADDRESS_ENV", "RayExecutor", "RayUnavailable"]
