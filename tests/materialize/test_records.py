"""Section index records: round trips, malformed records, and everything derived from them
(dense ids, replay rows, nonces, tx id lookup) against plain-Python twins over the blocks."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import attrs
import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize import records
from lazyledger.materialize import rows as rows_mod
from lazyledger.materialize.reference import replay_chain
from lazyledger.materialize.rows import ROW
from lazyledger.shards import pack_position
from lazyledger.store import u64
from lazyledger.workloads import Workload


def _random_rows(rng: random.Random, n: int, names: list[bytes]) -> list[bytes]:
    """Random rows whose accounts are ``names[id0]``, ``names[id1]``."""
    out = []
    for _ in range(n):
        id0, id1 = rng.randrange(len(names)), rng.randrange(len(names))
        out.append(
            ROW.pack(
                rng.randrange(256),
                rng.randrange(256),
                rng.getrandbits(32),
                rng.getrandbits(32),
                rng.randrange(-(2**63), 2**63),
                rng.randrange(-(2**63), 2**63),
                names[id0],
                names[id1],
                id0,
                id1,
            )
        )
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300])
def test_records_round_trip(n: int) -> None:
    rng = random.Random(n)
    table = [rng.randbytes(32) for _ in range(50)]
    rows = _random_rows(rng, n, table)
    senders = [rng.getrandbits(32) for _ in range(n)]
    tx_ids = [rng.randbytes(32) for _ in range(n)]
    names = [rng.randbytes(32) for _ in range(rng.randrange(4))]
    first = rng.getrandbits(31)
    one = records.section(0, rows, senders, tx_ids, first, names)[0]
    other = records.section(0, rows[::-1], senders[::-1], tx_ids[::-1], first + 9, names[:1])[0]
    r = records.decode([(99, one), (7, other), (5, records.section(0, [], [], [], 3, [])[0])])
    assert r.positions.tolist() == [99, 7, 5] and r.counts.tolist() == [n, n, 0]
    assert r.firsts.tolist() == [first, first + 9, 3]
    assert r.new.tolist() == [len(names), len(names[:1]), 0]
    assert r.names == b"".join(names) + b"".join(names[:1])
    assert r.fixed["sender"].tolist() == senders + senders[::-1]
    prefixes = [int.from_bytes(t[:8], "big") for t in tx_ids]
    assert r.txids.tolist() == prefixes + prefixes[::-1]
    again = records.replay_rows(r, np.frombuffer(b"".join(table), "V32"))
    assert again.tobytes() == b"".join(rows) + b"".join(rows[::-1])  # accounts from the table
    # what ingestion indexes without decoding equals the decoded records, field by field
    built = records.concat(
        [
            records.section(99, rows, senders, tx_ids, first, names)[1],
            records.section(7, rows[::-1], senders[::-1], tx_ids[::-1], first + 9, names[:1])[1],
            records.section(5, [], [], [], 3, [])[1],
        ]
    )
    assert len(records.concat([], 2)) == 0 and len(records.concat([], 5).fixed) == 0
    for field in attrs.fields(records.Records):
        got, want = getattr(built, field.name), getattr(r, field.name)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and np.array_equal(got, want), field.name
        else:
            assert got == want, field.name


def test_malformed_records_are_storage_errors() -> None:
    rows = _random_rows(random.Random(1), 3, [b"\1" * 32, b"\2" * 32])
    good = records.section(0, rows, [1, 2, 3], [b"\1" * 32] * 3, 5, [])[0]
    for bad in (b"", good[:5], good[:-1], good + b"\0"):
        with pytest.raises(ll.StorageError, match="section record at 0x2a"):
            records.decode([(0, good), (42, bad)])
    r = records.decode([(0, good)])
    with pytest.raises(ll.StorageError, match="no record introduces"):
        records.replay_rows(r, np.zeros(1, "V32"))  # ids beyond the known accounts


def _chain(
    tmp_path: Path, shape: str, seed: int, private: float = 0.0
) -> tuple[ll.Ledger, list[ll.Block]]:
    wl = Workload(shape, n_accounts=40, n_shards=3, seed=seed, private_share=private)
    led = ll.Ledger.create(tmp_path / f"{shape}-{seed}", wl.genesis())
    blocks = [b for _ in range(4) for b in wl.blocks(led, 2, rng_size(seed))]
    return led, blocks


def rng_size(seed: int) -> int:
    return 5 + seed * 17 % 60


@pytest.mark.parametrize(
    "shape,seed,private", [("uniform", 1, 0.0), ("adversarial", 2, 0.0), ("amm", 3, 0.3)]
)
def test_derived_index_matches_plain_python(
    tmp_path: Path, shape: str, seed: int, private: float
) -> None:
    led, blocks = _chain(tmp_path, shape, seed, private)
    path = led.store.path
    led.close()
    with ll.Ledger.open(path) as led:  # everything below is rebuilt from the records alone
        genesis = led.genesis
        # dense ids: genesis accounts sorted, then first appearance (acc0, acc1, sender)
        order = records.genesis_accounts(genesis)
        seen = set(order)
        sent: dict[bytes, list[int]] = {}
        for block in blocks:
            for (h, s, i), tx in block.transactions():
                access = tx.access()
                for a in (access[0], access[-1], tx.sender):
                    if a not in seen:
                        seen.add(a)
                        order.append(a)
                sent.setdefault(tx.sender, []).append(h)
                assert led.position(tx.id) == (h, s, i)
        for k, a in enumerate(order):
            assert led._account_id(a) == k
        columns, _ = led._index()
        rows = columns.rows[: columns.n]
        expect = [
            (pack_position(*pos), tx.access())
            for block in blocks
            for pos, tx in block.transactions()
        ]
        assert columns.pos[: columns.n].tolist() == [p for p, _ in expect]
        assert [bytes(r) for r in rows["acc0"]] == [a[0] for _, a in expect]
        assert [bytes(r) for r in rows["acc1"]] == [a[-1] for _, a in expect]
        for a in order:  # nonces counted from the sender chains, at every height
            for h in range(led.height + 1):
                assert led._sent(a, h) == sum(x <= h for x in sent.get(a, [])), (a.hex(), h)
            assert led.nonce(a) == len(sent.get(a, []))


def test_tx_ids_sharing_a_prefix_are_told_apart(tmp_path: Path) -> None:
    led, blocks = _chain(tmp_path, "uniform", 4)
    with led:
        tx = blocks[-1].transactions()[0][1]
        twin = tx.id[:8] + bytes(b ^ 0xFF for b in tx.id[8:])  # same prefix, another id
        with pytest.raises(ll.NotFound):
            led.position(twin)
        stranger = tx.sender[:8] + b"\0" * 24
        assert led.state(stranger) == ll.AccountState(0, {})
        assert led.nonce(stranger) == 0
        assert led.transaction(tx.id) == tx


def test_a_damaged_record_is_a_storage_error(tmp_path: Path) -> None:
    led, blocks = _chain(tmp_path, "uniform", 6)
    path = led.store.path
    h, s = 2, next(s for s, sec in enumerate(blocks[1].sections) if sec)
    env = led.store.shards[s]
    with env.read() as txn:
        good = led.store.decompress(txn.get(u64(h), db=env.db["rows"]))
    led.close()
    n, first, k = struct.unpack_from("<III", good)
    for bad in (good[:-1], struct.pack("<III", n, first + 1, k) + good[12:]):
        with ll.Ledger.open(path) as again:
            mine = again.store.shards[s]
            with mine.write() as txn:
                txn.put(u64(h), again.store.compress(bad), db=mine.db["rows"])
            with pytest.raises(ll.StorageError, match=f"section record at {h << 32 | s << 20:#x}"):
                again.state(blocks[0].transactions()[0][1].sender)
    with ll.Ledger.open(path) as again, again.store.shards[s].write() as txn:
        txn.put(u64(h), again.store.compress(good), db=again.store.shards[s].db["rows"])
    with ll.Ledger.open(path) as again:
        assert again.replay_all() == replay_chain(again.genesis, blocks)[0]  # repaired


@pytest.mark.parametrize("width", [3, 5, 8])
def test_wide_records_round_trip(width: int) -> None:
    """Records of a chain whose rows name ``width`` accounts: the extra ids and integers travel
    as extra planes, and the replay rows come back byte for byte."""
    rng = random.Random(width)
    table = [rng.randbytes(32) for _ in range(40)]
    kind = rows_mod.row_dtype(width)
    n = 120
    rows = np.zeros(n, kind)
    for field in ("op", "flags", "asset", "asset2"):
        rows[field] = [rng.getrandbits(8 * kind[field].itemsize) for _ in range(n)]
    for field in ("amount", "min_out", *(f"v{j}" for j in range(2, width))):
        rows[field] = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    for j in range(width):
        ids = [rng.randrange(len(table)) for _ in range(n)]
        rows[f"id{j}"] = ids
        rows[f"acc{j}"] = [np.void(table[i]) for i in ids]
    raw = [rows[i].tobytes() for i in range(n)]
    senders = [rng.getrandbits(32) for _ in range(n)]
    tx_ids = [rng.randbytes(32) for _ in range(n)]
    record, built = records.section(3 << 32, raw, senders, tx_ids, 0, [], width)
    decoded = records.decode([(3 << 32, record)], width)
    assert decoded.fixed.tobytes() == built.fixed.tobytes()
    assert decoded.fixed["sender"].tolist() == senders
    again = records.replay_rows(decoded, np.frombuffer(b"".join(table), "V32"))
    assert again.dtype == kind and again.tobytes() == b"".join(raw)
    with pytest.raises(ll.StorageError, match="wrong length"):
        records.decode([(0, record)], width - 1)  # read as another width
