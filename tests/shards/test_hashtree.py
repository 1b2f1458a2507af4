"""The Numba bucket-tree kernel against its plain-Python twin (the ``blake3`` package): the
same rows, the same undo log, on random and adversarial bucket sets."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from blake3 import blake3

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


def _picks(rng: random.Random) -> list[int]:
    shape = rng.randrange(4)
    if shape == 0:  # scattered
        picks = rng.sample(range(1 << touches.DEPTH), rng.randrange(1, 60))
    elif shape == 1:  # neighbours: shared parents
        first = rng.randrange((1 << touches.DEPTH) - 64)
        picks = list(range(first, first + rng.randrange(1, 64)))
    elif shape == 2:  # the edges
        picks = [0, 1, (1 << touches.DEPTH) - 1]
    else:  # one bucket again and again
        picks = [rng.choice([5, 77])]
    return sorted(set(picks))


@pytest.mark.parametrize(("seed", "forms"), [(0, "dict"), (1, "table"), (2, "mixed"), (3, "mixed")])
def test_the_sparse_bucket_tree_equals_the_dense_twin(
    seed: int, forms: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every form of :class:`hashtree.BucketTree` (dict, table growing from 4,096 slots, dense)
    and the switches between them against the dense tree and its plain-Python twin: the same
    rows, the same undo log, the same hashes after updates and restores."""
    rng = random.Random(seed)
    monkeypatch.setattr(hashtree, "DENSE_AFTER", 1000 if forms == "mixed" else 1 << 19)
    monkeypatch.setattr(hashtree, "_loaded", threading.Event())  # as if not loaded yet
    monkeypatch.setattr(hashtree, "WARM_AFTER", 1 << 62)  # and not loading in the background
    tree = hashtree.BucketTree(touches.DEPTH, touches._DEFAULTS)
    if forms == "table":
        tree.load()
    dense = np.zeros((2 << touches.DEPTH, 32), np.uint8)
    written: set[int] = {1}
    undo: list[tuple[np.ndarray, np.ndarray]] = []
    seen = set()
    for step in range(60):
        if forms == "mixed" and step == 5:
            tree.load()  # dict -> table; past DENSE_AFTER rows it turns dense
        buckets = _picks(rng)
        state = rng.getstate()
        _, rows, values = run(hashtree.update_python, dense, buckets, rng)
        rng.setstate(state)
        hashes = np.frombuffer(rng.randbytes(32 * len(buckets)), np.uint8).reshape(-1, 32)
        got_rows, got_values = tree.update(np.array(buckets, np.int64), hashes)
        assert (got_rows == rows).all() and (got_values == values).all()
        undo.append((rows, values))
        written.update(rows.tolist())
        seen.add(tree.form)
        if rng.random() < 0.3:  # roll back the last updates, newest first
            for _ in range(rng.randrange(1, len(undo) + 1)):
                rows, values = undo.pop()
                dense[rows] = values
                tree.restore(rows, values)
        for row in [*rng.sample(sorted(written), min(50, len(written))), 1, 2, 3]:
            assert tree.node(row) == dense[row].tobytes()
    assert all(tree.node(r) == dense[r].tobytes() for r in written)
    assert (tree.node(1) != bytes(32)) == bool(undo)  # all rolled back: the empty tree
    assert (
        seen == {"dict": {"dict"}, "table": {"table"}, "mixed": {"dict", "table", "dense"}}[forms]
    )


@pytest.mark.parametrize("n", [1, 31, 64, 65, 200])
def test_the_lane_kernel_is_blake3(n: int) -> None:
    """65-byte messages hashed side by side (as a level of many parents is) equal the
    ``blake3`` package, across the :data:`hashtree.LANES` boundary."""
    rng = random.Random(n)
    msgs = np.frombuffer(rng.randbytes(65 * n), np.uint8).reshape(n, 65).copy()
    out = np.zeros((n, 32), np.uint8)
    hashtree.hash65_lanes(msgs, out)
    assert [o.tobytes() for o in out] == [blake3(m.tobytes()).digest() for m in msgs]


def test_a_wide_update_equals_the_twin() -> None:
    """Hundreds of buckets at once (levels of many parents, hashed in lanes)."""
    rng = random.Random(12)
    tree = hashtree.BucketTree(touches.DEPTH, touches._DEFAULTS)
    tree.load()
    dense = np.zeros((2 << touches.DEPTH, 32), np.uint8)
    for size in (300, 1000, 40):
        buckets = sorted(rng.sample(range(1 << touches.DEPTH), size))
        state = rng.getstate()
        _, rows, values = run(hashtree.update_python, dense, buckets, rng)
        rng.setstate(state)
        hashes = np.frombuffer(rng.randbytes(32 * size), np.uint8).reshape(-1, 32)
        got_rows, got_values = tree.update(np.array(buckets, np.int64), hashes)
        assert (got_rows == rows).all() and (got_values == values).all()
        assert all(tree.node(int(r)) == dense[r].tobytes() for r in rows)
