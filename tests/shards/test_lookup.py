"""The in-memory digest lookups against dict twins, on random and colliding prefixes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lazyledger.shards.lookup import MERGE_MIN, DenseIds, PrefixIndex, prefix, prefixes


def test_prefix_index_agrees_with_a_dict_of_lists() -> None:
    rng = random.Random(5)
    index = PrefixIndex()
    twin: dict[int, list[int]] = {}
    value = 0
    for _ in range(60):  # small adds (kept in the tail) and large ones (merged)
        n = rng.choice([1, 7, 300, MERGE_MIN + 3])
        keys = [rng.choice([rng.getrandbits(64), rng.randrange(40)]) for _ in range(n)]
        values = list(range(value, value + n))
        value += n
        index.add(np.array(keys, np.uint64), np.array(values, np.int64))
        for k, v in zip(keys, values, strict=True):
            twin.setdefault(k, []).append(v)
        for k in [*rng.sample(sorted(twin), min(20, len(twin))), rng.getrandbits(64)]:
            assert index.get(k) == sorted(twin.get(k, [])), k
    assert len(index) == value


def test_dense_ids_check_the_whole_account() -> None:
    ids = DenseIds()
    a = bytes(range(32))
    b = a[:8] + b"\xff" * 24  # the same 8-byte prefix as ``a``
    ids.add(0, a + b)
    assert ids.id_of(a) == 0 and ids.id_of(b) == 1
    assert ids.id_of(a[:8] + b"\x01" * 24) is None  # a prefix hit is only a candidate
    many = np.random.default_rng(1).bytes(32 * 5000)
    ids.add(2, many)
    assert ids.id_of(many[32 * 4321 : 32 * 4322]) == 4323
    assert ids.names[4323].tobytes() == many[32 * 4321 : 32 * 4322]
    assert len(ids) == 5002
    with pytest.raises(ValueError, match="next is 5002"):
        ids.add(7, a)


def test_prefixes_are_big_endian_heads() -> None:
    d = bytes(range(64))
    assert prefixes(d).tolist() == [prefix(d[:32]), prefix(d[32:])]
    assert prefix(d) == int.from_bytes(d[:8], "big")


def test_vectorised_lookups_agree_with_one_at_a_time() -> None:
    """``get_many``/``ids_of`` against ``get``/``id_of``: sorted arrays, the tail, shared
    prefixes, misses, repeats and recently used accounts, as accounts are added."""
    rng = np.random.default_rng(6)
    ids = DenseIds()
    pool: list[bytes] = []
    for round_ in range(12):
        n = int(rng.choice([1, 5, 200, MERGE_MIN + 1]))
        fresh = [rng.bytes(32) for _ in range(n)]
        if pool:  # some share an 8-byte prefix with an account already there
            fresh[: n // 3] = [pool[int(rng.integers(len(pool)))][:8] + rng.bytes(24)
                               for _ in range(n // 3)]  # fmt: skip
        fresh = list(dict.fromkeys(a for a in fresh if a not in set(pool)))
        ids.add(len(pool), b"".join(fresh))
        pool += fresh
        asked = [pool[int(i)] for i in rng.integers(len(pool), size=50)]
        asked += [a[:8] + rng.bytes(24) for a in asked[:10]] + [rng.bytes(32)] + asked[:5]
        twin = DenseIds()  # a copy without the recently-used dict's state
        twin.add(0, b"".join(pool))
        assert ids.ids_of(asked) == [twin.id_of(a) for a in asked], round_
        assert ids.ids_of(asked) == [ids.id_of(a) for a in asked]  # (now all recently used)
        keys = prefixes(b"".join(asked))
        assert ids._index.get_many(keys) == [ids._index.get(int(k)) for k in keys.tolist()]
    assert ids.ids_of([]) == []
