"""The columnar index's checkpoint mirror and sender chains against plain Python."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lazyledger.materialize import walk
from lazyledger.materialize.index import (
    Checkpoints,
    Cuts,
    Senders,
    _sorted_by_account_then_position,
)

batch = st.tuples(
    st.integers(0, 6),  # position
    st.lists(st.integers(0, 40), max_size=12, unique=True),  # account ids
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(batch, max_size=6), min_size=1, max_size=4))
def test_checkpoint_merges_equal_a_sort(rounds: list[list[tuple[int, list[int]]]]) -> None:
    """Batches added in rounds (a read merges each round, one at a time or several, earlier
    or later positions) give (account, position)-sorted arrays with each batch's holdings."""
    cps = Checkpoints()
    added: list[tuple[int, int, int]] = []  # (account, position, the holding's value)
    for batches in rounds:
        for position, ids in batches:
            k = len(added)
            ids_sorted = sorted(ids)
            values = np.arange(k + 1, k + 1 + len(ids_sorted), dtype=np.int64)
            cps.add(
                position,
                np.array(ids_sorted, np.int64),
                np.ones(len(ids_sorted), np.int64),
                np.full(len(ids_sorted), 7, np.int64),
                values,
            )
            added += [(a, position, v) for a, v in zip(ids_sorted, values.tolist(), strict=True)]
        cuts = cps.arrays()
        expected = sorted(added, key=lambda e: (e[0], e[1]))  # (stable: ties keep their order)
        assert cuts.ids.tolist() == [a for a, _, _ in expected]
        assert cuts.pos.tolist() == [p for _, p, _ in expected]
        got = [cuts.holdings(i + 1) for i in range(len(cuts))]
        assert got == [{7: v} for _, _, v in expected]


@settings(deadline=None)  # (the first example may compile the kernel)
@given(
    st.lists(st.integers(0, 300), max_size=200),
    st.lists(st.integers(0, 5), max_size=200),
    st.integers(0, 200),
)
def test_the_counting_order_equals_a_lexsort(ids: list[int], pos: list[int], head: int) -> None:
    n = min(len(ids), len(pos))
    a, p = np.array(ids[:n], np.int64), np.array(pos[:n], np.int64)
    head = min(head, n)
    first = np.lexsort((p[:head], a[:head]))  # the already sorted part
    a[:head], p[:head] = a[:head][first], p[:head][first]
    p[head:] = np.sort(p[head:])  # the rest in position order
    lo = np.arange(n, dtype=np.int64)  # each entry's own index: the order shows in it
    got = _sorted_by_account_then_position(a, p, lo, lo + 1, head)
    order = np.lexsort((p, a))
    assert [c.tolist() for c in got] == [c[order].tolist() for c in (a, p, lo, lo + 1)]


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50)), max_size=60), st.integers(0, 60))
def test_sends_counted_before_a_position(sends: list[tuple[int, int]], end: int) -> None:
    """``sent_before`` and its vectorised twin against a count (positions ascending)."""
    sends = sorted(sends, key=lambda s: s[1])
    senders = Senders()
    senders.extend(
        np.array([s for s, _ in sends], np.int64), np.array([p for _, p in sends], np.int64)
    )
    ids = np.arange(12, dtype=np.int64)  # 10 and 11 never sent
    expected = [sum(1 for s, p in sends if s == a and p < end) for a in range(12)]
    assert [senders.sent_before(a, end) for a in range(12)] == expected
    assert senders.sent_before_each(ids, end).tolist() == expected


@settings(deadline=None)
@given(
    st.sets(st.tuples(st.integers(0, 12), st.integers(0, 30)), max_size=60),
    st.integers(0, 15),
    st.integers(-1, 32),
)
def test_a_cut_is_the_latest_checkpoint_at_or_before(
    pairs: set[tuple[int, int]], a: int, p: int
) -> None:
    """``walk.cut_index`` over an account's range (newest first, then a bisection) against a
    scan of every checkpoint; ids past the mirror's end have none."""
    order = sorted(pairs)
    e = np.zeros(0, np.int64)
    cuts = Cuts(
        np.array([x for x, _ in order], np.int64),
        np.array([y for _, y in order], np.int64),
        e,
        e,
        e,
        e,
    )
    mine = [i + 1 for i, (x, y) in enumerate(order) if x == a and y <= p]
    assert walk.cut_index(cuts.first, cuts.pos, a, p) == (mine[-1] if mine else 0)
    assert walk.cut_indices(cuts.first, cuts.pos, np.array([a], np.int64), p).tolist() == [
        mine[-1] if mine else 0
    ]
