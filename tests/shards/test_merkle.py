from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from lazyledger.shards import end_of, pack_position, shard_of, unpack_position
from lazyledger.shards.merkle import EMPTY_ROOT, proof, root, verify


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), data=st.data())
def test_every_leaf_proves_and_tampering_fails(items: list[bytes], data: st.DataObject) -> None:
    r = root(items)
    i = data.draw(st.integers(0, len(items) - 1))
    path = proof(items, i)
    assert verify(r, items[i], i, len(items), path)
    assert not verify(
        r, b"\x00" * 32 if items[i] != b"\x00" * 32 else b"\x01" * 32, i, len(items), path
    )
    if len(items) > 1:
        assert (
            not verify(r, items[i], (i + 1) % len(items), len(items), path)
            or items[i] == items[(i + 1) % len(items)]
        )
        assert not verify(r, items[i], i, len(items) + 1, path) or len(path) == len(
            proof([*items, b""], i)
        )
    if path:
        bad = [bytes(32), *path[1:]]
        assert not verify(r, items[i], i, len(items), bad)


def test_roots_are_order_and_count_sensitive() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert root([]) == EMPTY_ROOT
    assert len({root([a]), root([a, b]), root([b, a]), root([a, b, a])}) == 4


def test_positions_sort_in_global_order() -> None:
    ps = [(1, 0, 5), (1, 1, 0), (2, 0, 0), (2, 1023, 2**20 - 1), (3, 0, 0)]
    packed = [pack_position(*p) for p in ps]
    assert packed == sorted(packed) and [unpack_position(p) for p in packed] == ps
    assert end_of(1) == pack_position(2, 0, 0) and end_of(1) > pack_position(1, 1023, 2**20 - 1)
    assert (
        shard_of(bytes(8) + b"\xff" * 24, 7) == 0
        and shard_of(b"\x00" * 7 + b"\x09" + bytes(24), 4) == 1
    )
