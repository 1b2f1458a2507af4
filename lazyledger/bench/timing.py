"""Timing helpers: wall-clock samples, percentiles and progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def percentiles(samples: Sequence[float], scale: float = 1e3) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation) and the sample count, scaled (default: s -> ms)."""
    a = np.asarray(samples, dtype=np.float64) * scale
    p50, p95, p99 = np.percentile(a, [50, 95, 99]).tolist()
    return {"p50": p50, "p95": p95, "p99": p99, "n": float(len(a))}


def sample(fn: Callable[[], object], reps: int) -> list[float]:
    """Seconds taken by each of ``reps`` calls of ``fn``."""
    out: list[float] = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def progress(
    items: Iterable[T], desc: str, total: int | None = None, on: bool = True
) -> Iterator[T]:
    """``items`` with a tqdm bar on stderr (a plain iterator when ``on`` is False)."""
    if not on:
        yield from items
        return
    from tqdm import tqdm  # type: ignore[import-untyped]

    yield from tqdm(items, desc=desc, total=total, leave=False, unit="it", dynamic_ncols=True)
