"""The Numba bucket-tree kernel against its plain-Python twin (the ``blake3`` package): the
same rows, the same undo log, on random and adversarial bucket sets."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lazyledger import touches
from lazyledger.shards import hashtree


def run(kernel: object, tree: np.ndarray, buckets: list[int], rng: random.Random) -> tuple:
    hashes = np.frombuffer(rng.randbytes(32 * len(buckets)), np.uint8).reshape(-1, 32)
    room = len(buckets) * (touches.DEPTH + 1)
    rows, values = np.empty(room, np.int64), np.empty((room, 32), np.uint8)
    k = kernel(  # type: ignore[operator]
        tree, touches.DEPTH, np.array(buckets, np.int64), hashes, touches._DEFAULTS, rows, values
    )
    return k, rows[:k].copy(), values[:k].copy()


@pytest.mark.parametrize("seed", range(4))
def test_kernel_equals_the_python_twin(seed: int) -> None:
    rng = random.Random(seed)
    a = np.zeros((2 << touches.DEPTH, 32), np.uint8)
    b = np.zeros_like(a)
    for _ in range(6):
        shape = rng.randrange(3)
        if shape == 0:  # scattered
            picks = rng.sample(range(1 << touches.DEPTH), rng.randrange(1, 40))
        elif shape == 1:  # neighbours: shared parents
            first = rng.randrange((1 << touches.DEPTH) - 64)
            picks = list(range(first, first + rng.randrange(1, 64)))
        else:  # the edges
            picks = [0, 1, (1 << touches.DEPTH) - 1]
        buckets = sorted(set(picks))
        state = rng.getstate()
        ka, ra, va = run(hashtree.update, a, buckets, rng)
        rng.setstate(state)
        kb, rb, vb = run(hashtree.update_python, b, buckets, rng)
        assert ka == kb and (ra == rb).all() and (va == vb).all()
        assert (a == b).all()
    # the root equals the reference: empty buckets at their default, the rest as written
    assert a[1].tobytes() != bytes(32)
    for rows, values in [(ra, va)]:
        a[rows[::-1]] = values[::-1]
        b[rows[::-1]] = values[::-1]
    assert (a == b).all()


def test_update_any_gives_the_same_root_before_and_after_the_kernel_loads() -> None:
    rng = random.Random(9)
    buckets = sorted(rng.sample(range(1 << touches.DEPTH), 30))
    a = np.zeros((2 << touches.DEPTH, 32), np.uint8)
    b = np.zeros_like(a)
    state = rng.getstate()
    run(hashtree.update_python, a, buckets, rng)
    rng.setstate(state)
    run(hashtree.update_any, b, buckets, rng)
    assert (a == b).all()
