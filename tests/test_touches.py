"""The touch commitment: the incremental map against a from-scratch reference on random and
adversarial touch patterns, prefix proofs for every prefix, and the ledger refusing a block
whose header commits to anything else."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest
from blake3 import blake3

import lazyledger as ll
from lazyledger import touches as t
from lazyledger.shards import hashtree, pack_position
from lazyledger.workloads import Workload

AUTH = ll.Keypair.from_seed(b"\x01" * 32)
KEYS = [ll.Keypair.from_seed(bytes([i]) * 32) for i in range(2, 12)]


def reference_root(lists: dict[bytes, list[int]]) -> bytes:
    """touch_root straight from the definition: every bucket, every level, no incremental
    state (sparse only in that empty subtrees take their default hash)."""
    buckets: dict[int, list[bytes]] = {}
    for account, positions in lists.items():
        if positions:
            root = t.tree_root([blake3(b"\x00" + p.to_bytes(8, "big")).digest() for p in positions])
            buckets.setdefault(t.bucket_of(account), []).append(
                account + len(positions).to_bytes(8, "big") + root
            )
    level = {b: blake3(b"\x03" + b"".join(sorted(e))).digest() for b, e in buckets.items()}
    for d in range(t.DEPTH):
        up: dict[int, bytes] = {}
        for p in {i >> 1 for i in level}:
            left = level.get(2 * p, t.DEFAULTS[d])
            right = level.get(2 * p + 1, t.DEFAULTS[d])
            up[p] = blake3(b"\x01" + left + right).digest()
        level = up
    return level.get(0, t.EMPTY_ROOT)


def test_empty_and_defaults() -> None:
    assert t.TouchMap().root == t.EMPTY_ROOT == reference_root({})
    assert t.tree_root([]) == blake3(b"").digest()


def test_prefix_proofs_for_every_prefix() -> None:
    for n in range(1, 70):
        leaves = [t.leaf(3 * i + 1) for i in range(n)]
        root = t.tree_root(leaves)
        for k in range(1, n + 1):
            right = t.right_hashes(leaves, k)
            assert len(right) <= max(1, n.bit_length())
            assert t.prefix_root(leaves[:k], n, right) == root
            # another hash, or a hash too many or too few, gives another root or none (the
            # count is bound by the account's entry, beside the root)
            assert t.prefix_root(leaves[:k], n, [*right, root]) is None
            if right:
                assert t.prefix_root(leaves[:k], n, right[:-1]) is None
                flipped = [bytes(32), *right[1:]]
                assert t.prefix_root(leaves[:k], n, flipped) != root
            if k > 1:
                assert t.prefix_root(leaves[: k - 1], n, right) != root
    assert t.prefix_root([], 3, []) is None
    assert t.prefix_root([t.leaf(1)], t.MAX_COUNT + 1, []) is None


class FakeTx:
    """Only what the touch map reads of a transaction: its access set."""

    def __init__(self, access: tuple[bytes, ...]) -> None:
        self._access = access

    def access(self) -> tuple[bytes, ...]:
        return self._access


@pytest.mark.parametrize("seed", range(6))
def test_incremental_map_equals_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    # adversarial accounts: shared 20-bit buckets, hubs, repeated accounts in an access set
    crowd = bytes(rng.randrange(256) for _ in range(3))
    accounts = [bytes(rng.randrange(256) for _ in range(32)) for _ in range(12)]
    accounts += [crowd + bytes(rng.randrange(256) for _ in range(29)) for _ in range(6)]
    touches = t.TouchMap()
    lists: dict[bytes, list[int]] = {}
    stage = touches.stage()
    for height in range(1, 25):
        if touches.height == height - 1:  # the last stage was committed
            stage = touches.stage()
        sections = []
        for s in range(3):
            section = []
            for i in range(rng.randrange(0, 7)):
                hub = accounts[0] if rng.random() < 0.5 else rng.choice(accounts)
                access = (hub, rng.choice(accounts), rng.choice(accounts))[: rng.randrange(1, 4)]
                section.append(FakeTx(access))
                for a in dict.fromkeys(access):
                    lists.setdefault(a, []).append(pack_position(height, s, i))
            sections.append(section)
        root = stage.add_block(height, sections)  # type: ignore[arg-type]
        assert root == reference_root(lists)
        if rng.random() < 0.4:
            stage.commit()
            assert touches.root == root and touches.height == height
        # proofs of every prefix of every account, against the committed map
        if touches.height == height:
            for a, positions in lists.items():
                k = rng.randrange(1, len(positions) + 1)
                pr = touches.prove(a, k)
                others = [(bytes.fromhex(x), n, bytes.fromhex(r)) for x, n, r in pr["bucket"]]
                path = [bytes.fromhex(p) for p in pr["path"]]
                right = [bytes.fromhex(r) for r in pr["right"]]
                assert pr["count"] == len(positions)
                ok = t.check_account(root, a, positions[:k], len(positions), right, others, path)
                assert ok is None
                assert t.check_account(
                    root, a, positions[: k - 1], len(positions), right, others, path
                )
                if others:
                    assert t.check_account(root, a, positions[:k], len(positions), right, [], path)
            never = bytes(32)
            pr = touches.prove(never, 0)
            others = [(bytes.fromhex(x), n, bytes.fromhex(r)) for x, n, r in pr["bucket"]]
            path = [bytes.fromhex(p) for p in pr["path"]]
            assert t.check_account(root, never, [], 0, [], others, path) is None
    with pytest.raises(ValueError):
        touches.prove(accounts[0], touches.count(accounts[0]) + 1)
    with pytest.raises(ValueError):
        touches.stage().add_block(touches.height + 2, [])


def test_abandoned_stages_leave_the_map_as_it_was() -> None:
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    tm = t.TouchMap()
    st = tm.stage()
    first = st.add_block(1, [[FakeTx((a, b))]])  # type: ignore[list-item]
    st.commit()
    st = tm.stage()
    assert st.add_block(2, [[FakeTx((a, c))]]) != first  # type: ignore[list-item]
    assert tm.root == first and tm.count(a) == 1  # reading the map rolls the stage back
    with pytest.raises(ValueError):
        st.add_block(3, [])
    st = tm.stage()
    st.add_block(2, [[FakeTx((c,))]])  # type: ignore[list-item]
    st.rollback()
    assert tm.root == first and tm.count(c) == 0
    st = tm.stage()
    second = st.add_block(2, [[FakeTx((a, c))]])  # type: ignore[list-item]
    st.commit()
    lists = {a: [pack_position(1, 0, 0), pack_position(2, 0, 0)], b: [pack_position(1, 0, 0)]}
    assert tm.root == second == reference_root({**lists, c: [pack_position(2, 0, 0)]})
    with pytest.raises(ValueError):
        st.commit()


def test_a_rebuild_in_one_stage_gives_the_same_root() -> None:
    rng = random.Random(6)
    accounts = [rng.randbytes(32) for _ in range(30)]
    blocks = [
        (h, [[FakeTx((rng.choice(accounts), rng.choice(accounts))) for _ in range(5)]])
        for h in range(1, 12)
    ]
    step = t.TouchMap()
    for h, sections in blocks:
        st = step.stage()
        st.add_block(h, sections)  # type: ignore[arg-type]
        st.commit()
    once = t.build(blocks)  # type: ignore[arg-type]
    assert once.root == step.root and once.height == step.height == 11
    assert once.entries == step.entries and once.buckets == step.buckets


@pytest.mark.parametrize("seed", range(4))
def test_a_map_built_from_index_columns_equals_one_built_from_blocks(seed: int) -> None:
    """:meth:`TouchMap.from_columns` (Numba leaves, mountains and tree, from dense ids) against
    :func:`build` (block by block): roots, entries, peaks, buckets, touch lists, proofs."""
    rng = random.Random(seed)
    crowd = rng.randbytes(3)  # accounts sharing a 20-bit bucket
    accounts = [rng.randbytes(32) for _ in range(25)]
    accounts += [crowd + rng.randbytes(29) for _ in range(16)]  # > 14 entries: 2 chunks
    blocks, ids, names = [], {}, []
    id0, id1, pos = [], [], []
    for h in range(1, rng.randrange(2, 40)):
        sections = []
        for s in range(3):
            section = []
            for i in range(rng.randrange(0, 6)):
                hub = accounts[0] if rng.random() < 0.4 else rng.choice(accounts)
                access = (hub,) if rng.random() < 0.2 else (hub, rng.choice(accounts))
                section.append(FakeTx(access))
                for a in access:
                    if a not in ids:
                        ids[a] = len(names)
                        names.append(a)
                id0.append(ids[access[0]])
                id1.append(ids[access[-1]])
                pos.append(pack_position(h, s, i))
            sections.append(section)
        blocks.append((h, sections))
    once = t.build(blocks)  # type: ignore[arg-type]
    cols = t.TouchMap.from_columns(
        np.array(id0, np.uint32),
        np.array(id1, np.uint32),
        np.array(pos, np.int64),
        np.array([np.frombuffer(a, "V32")[0] for a in names], "V32"),
        len(blocks),
    )
    assert cols.root == once.root and cols.height == once.height
    assert cols.entries == once.entries and cols.buckets == once.buckets
    assert cols.peaks == once.peaks and cols.positions == once.positions
    for a in accounts[:5]:
        if once.count(a):
            assert cols.prove(a, 1) == once.prove(a, 1)
    # a map built whole up to some height, then extended block by block (a reopened ledger)
    cut = rng.randrange(0, len(blocks) + 1)
    rows = sum(1 for h, sections in blocks[:cut] for section in sections for _ in section)
    grown = t.TouchMap.from_columns(
        np.array(id0[:rows], np.uint32),
        np.array(id1[:rows], np.uint32),
        np.array(pos[:rows], np.int64),
        np.array([np.frombuffer(a, "V32")[0] for a in names], "V32"),
        cut,
    )
    for h, sections in blocks[cut:]:
        st = grown.stage()
        assert st.add_block(h, sections) == t.build(blocks[:h]).root  # type: ignore[arg-type]
        st.commit()
    assert grown.root == once.root and grown.entries == once.entries
    assert grown.buckets == once.buckets and grown.positions == once.positions
    assert grown.peaks == once.peaks
    for a in accounts:
        if once.count(a):
            k = rng.randrange(1, once.count(a) + 1)
            assert grown.prove(a, k) == once.prove(a, k) and grown.count(a) == once.count(a)


def test_the_numba_parent_hash_is_blake3() -> None:
    rng = random.Random(4)
    for _ in range(300):
        left, right = rng.randbytes(32), rng.randbytes(32)
        got = hashtree.parent_hash(
            np.frombuffer(left, np.uint8), np.frombuffer(right, np.uint8)
        ).tobytes()
        assert got == blake3(b"\x01" + left + right).digest() == t.node(left, right)


def genesis() -> ll.Genesis:
    return ll.Genesis(
        chain_id="touch",
        n_shards=2,
        authorities=[AUTH.public_key],
        assets={0: AUTH.account},
        balances={k.account: {0: 1000} for k in KEYS},
    )


def transfers(rng: random.Random, nonces: dict[bytes, int], n: int) -> list[ll.Transaction]:
    out = []
    for _ in range(n):
        kp, to = rng.choice(KEYS), rng.choice(KEYS)
        nonce = nonces.get(kp.account, 0)
        nonces[kp.account] = nonce + 1
        out.append(ll.transfer(kp, nonce=nonce, to=to.account, asset=0, amount=rng.randrange(1, 9)))
    return out


def test_a_wrong_touch_root_makes_the_block_invalid(tmp_path: Path) -> None:
    rng = random.Random(1)
    nonces: dict[bytes, int] = {}
    with ll.Ledger.create(tmp_path / "a", genesis()) as led:
        led.append(led.propose(transfers(rng, nonces, 5), AUTH))
        good = led.propose(transfers(rng, nonces, 5), AUTH)
        for wrong in (bytes(32), led.header(1).touch_root, t.EMPTY_ROOT):
            header = attrs.evolve(good.header, touch_root=wrong)
            header = attrs.evolve(header, signature=AUTH.sign(header.body))
            with pytest.raises(ll.InvalidBlock, match="touch_root"):
                led.append(ll.Block(header, good.sections))
            assert led.height == 1
        led.append(good)  # the map was left as it was by the refusals
        assert led.header(2).touch_root == good.header.touch_root


def test_followers_reopened_and_readonly_ledgers_agree(tmp_path: Path) -> None:
    rng = random.Random(2)
    nonces: dict[bytes, int] = {}
    with ll.Ledger.create(tmp_path / "p", genesis()) as led:
        blocks: list[ll.Block] = []
        for _ in range(5):
            b = led.propose(transfers(rng, nonces, rng.randrange(0, 8)), AUTH)
            led.append(b)
            blocks.append(b)
        with ll.Ledger.create(tmp_path / "f", genesis()) as follower:
            follower.append_many(blocks[:2])
            for b in blocks[2:]:
                follower.append(b.to_bytes())
            assert follower.header(5).touch_root == led.header(5).touch_root
        sixth = led.propose(transfers(rng, nonces, 4), AUTH)
    (tmp_path / "b6").write_bytes(sixth.to_bytes())
    a = KEYS[0].account
    reader = ll.Ledger.open(tmp_path / "p", readonly=True)
    try:
        assert reader.touch_proofs({a: 0}, 5)[a]["count"] > 0  # builds the map at 5
        owner = (
            "import sys, lazyledger as ll\n"
            "with ll.Ledger.open(sys.argv[1]) as led:\n"
            "    led.append(ll.Block.from_bytes(open(sys.argv[2], 'rb').read()))\n"
        )
        subprocess.run(
            [sys.executable, "-c", owner, str(tmp_path / "p"), str(tmp_path / "b6")], check=True
        )
        assert reader.refresh() == 6
        count = reader.touch_proofs({a: 0}, 6)[a]["count"]
        k = len([p for p, tx in sixth.transactions() if a in tx.access()])
        assert count == reader.touch_proofs({a: 0}, 5)[a]["count"] + k
        lists = touch_lists(reader)
        assert sixth.header.touch_root == reference_root(lists)
    finally:
        reader.close()
    with ll.Ledger.open(tmp_path / "p") as again:  # rebuilt from the stored blocks
        again.append(again.propose(transfers(rng, nonces, 3), AUTH))
        assert again.header(7).touch_root == reference_root(touch_lists(again))


def touch_lists(led: ll.Ledger) -> dict[bytes, list[int]]:
    lists: dict[bytes, list[int]] = {}
    for h in range(1, led.height + 1):
        for (bh, s, i), tx in led.block(h).transactions():
            for a in dict.fromkeys(tx.access()):
                lists.setdefault(a, []).append(pack_position(bh, s, i))
    return lists


def test_proofs_at_past_heights_match_a_map_built_to_that_height(tmp_path: Path) -> None:
    rng = random.Random(3)
    nonces: dict[bytes, int] = {}
    with ll.Ledger.create(tmp_path / "h", genesis()) as led:
        for _ in range(4):
            led.append(led.propose(transfers(rng, nonces, 5), AUTH))
        a = KEYS[3].account
        for h in range(1, 5):
            n = len(led.slice(a, h, use_checkpoints=False))
            pr = led.touch_proofs({a: 0}, h)[a]
            others = [(bytes.fromhex(x), c, bytes.fromhex(r)) for x, c, r in pr["bucket"]]
            path = [bytes.fromhex(p) for p in pr["path"]]
            assert pr["count"] <= n
            root = led.header(h).touch_root
            if pr["count"] == 0:
                assert t.check_account(root, a, [], 0, [], others, path) is None
            else:  # a count above 0 with no touches given proves nothing
                assert t.check_account(root, a, [], pr["count"], [], others, path)


def test_a_proof_of_more_touches_than_there_are_is_a_typed_error(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=10, n_shards=2, seed=1)
    with ll.Ledger.create(tmp_path / "c", wl.genesis()) as led:
        list(wl.blocks(led, 2, 5))
        a = wl.keys[0].account
        n = led.touch_proofs({a: 0})[a]["count"]
        with pytest.raises(ll.InvalidRequest, match="touches asked"):
            led.touch_proofs({a: n + 1})


def reference_views(
    lists: dict[bytes, list[int]],
) -> tuple[dict[bytes, bytes], dict[bytes, list[bytes]], dict[int, list[bytes]]]:
    """Entries, mountain-range peaks (largest first) and bucket members straight from the
    touch lists: every tree rebuilt from its leaves."""
    entries, peaks, buckets = {}, {}, {}
    for a, positions in lists.items():
        leaves = [t.leaf(p) for p in positions]
        entries[a] = t.entry(a, len(leaves), t.tree_root(leaves))
        n, lo, found = len(leaves), 0, []
        for i in reversed(range(n.bit_length())):
            if n >> i & 1:
                found.append(t.tree_root(leaves[lo : lo + (1 << i)]))
                lo += 1 << i
        peaks[a] = found
        buckets.setdefault(t.bucket_of(a), []).append(a)
    return entries, peaks, {b: sorted(m) for b, m in buckets.items()}


def adversarial_blocks(
    rng: random.Random, pattern: str, n_blocks: int
) -> list[tuple[int, list[list[FakeTx]]]]:
    """Blocks of access sets: ``hub`` (one account in every transaction), ``new`` (two
    accounts never seen before in each), ``crowd`` (20 accounts sharing one 20-bit bucket:
    bucket messages of several BLAKE3 chunks), ``wide`` (1 to 8 accounts, repeats allowed)."""
    hub = rng.randbytes(32)
    crowd_head = rng.randbytes(3)
    crowd = [crowd_head + rng.randbytes(29) for _ in range(20)]
    known = [rng.randbytes(32) for _ in range(8)]
    blocks = []
    for h in range(1, n_blocks + 1):
        sections = []
        for _ in range(rng.randrange(1, 4)):
            section = []
            for _ in range(rng.randrange(0, 9)):
                if pattern == "hub":
                    access: tuple[bytes, ...] = (rng.choice(known), hub)
                elif pattern == "new":
                    access = (rng.randbytes(32), rng.randbytes(32))
                elif pattern == "crowd":
                    access = (rng.choice(crowd), rng.choice(crowd + known))
                else:
                    pool = [hub, *crowd[:4], *known]
                    access = tuple(rng.choice(pool) for _ in range(rng.randrange(1, 9)))
                section.append(FakeTx(access))
            sections.append(section)
        blocks.append((h, sections))
    return blocks


@pytest.mark.parametrize("pattern", ["hub", "new", "crowd", "wide"])
@pytest.mark.parametrize("form", ["dict", "table", "dense"])
def test_the_array_map_equals_the_reference(
    pattern: str, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The array-backed map (Numba pushes and settles with undo logs, each form of the bucket
    tree) against touch lists kept by hand and every hash rebuilt from its leaves: roots after
    every block, entries, peaks, touch lists, buckets and proofs after every commit, through
    explicit and implicit rollbacks, stages of several blocks and a map built whole first."""
    rng = random.Random(f"{pattern}-{form}")
    if form == "dict":  # the bucket tree hashed in plain Python all along
        monkeypatch.setattr(hashtree, "_loaded", __import__("threading").Event())
        monkeypatch.setattr(hashtree, "WARM_AFTER", 1 << 62)
    if form == "dense":
        monkeypatch.setattr(hashtree, "DENSE_AFTER", 100)
    blocks = adversarial_blocks(rng, pattern, 30)
    # a map built whole first (from one- and two-account access sets; its tree is hashed by
    # the kernels, so not in the dict form)
    cut = rng.randrange(0, 10) if pattern != "wide" and form != "dict" else 0
    lists: dict[bytes, list[int]] = {}
    names: list[bytes] = []
    ids: dict[bytes, int] = {}
    id0, id1, pos = [], [], []
    for h, sections in blocks[:cut]:
        for s, section in enumerate(sections):
            for i, tx in enumerate(section):
                access = tx.access()
                for a in dict.fromkeys(access):
                    lists.setdefault(a, []).append(pack_position(h, s, i))
                    if a not in ids:
                        ids[a] = len(names)
                        names.append(a)
                id0.append(ids[access[0]])
                id1.append(ids[access[-1]])
                pos.append(pack_position(h, s, i))
    if cut:
        touches = t.TouchMap.from_columns(
            np.array(id0, np.uint32),
            np.array(id1, np.uint32),
            np.array(pos, np.int64),
            np.array([np.frombuffer(a, "V32")[0] for a in names], "V32"),
            cut,
        )
    else:
        touches = t.TouchMap()
    if form != "dict":
        touches.bucket_tree.load()
    committed = {a: list(p) for a, p in lists.items()}
    stage, pending = touches.stage(), False  # pending: the stage holds uncommitted blocks

    def touched(lists: dict[bytes, list[int]], h: int, sections: list[list[FakeTx]]) -> None:
        for s, section in enumerate(sections):
            for i, tx in enumerate(section):
                for a in dict.fromkeys(tx.access()):
                    lists.setdefault(a, []).append(pack_position(h, s, i))

    for h, sections in blocks[cut:]:
        if not pending and rng.random() < 0.25:  # another block proposed at h, then dropped
            other = rng.choice(blocks)[1] + [[FakeTx((rng.randbytes(32),))]]
            expected = {a: list(p) for a, p in committed.items()}
            touched(expected, h, other)
            dropped = touches.stage()
            assert dropped.add_block(h, other) == reference_root(expected)  # type: ignore[arg-type]
            if rng.random() < 0.5:
                dropped.rollback()
            assert touches.root == reference_root(committed)  # (rolls an open stage back)
        touched(lists, h, sections)
        if not pending:
            stage = touches.stage()
        several = rng.random() < 0.3
        got = stage.add_block(h, sections, root=not several)  # type: ignore[arg-type]
        pending = True
        if not several:
            assert got == reference_root(lists)
        if several and rng.random() < 0.7:
            continue  # the stage goes on: bucket tree brought up to date at commit
        stage.commit()
        pending = False
        committed = {a: list(p) for a, p in lists.items()}
        entries, peaks, buckets = reference_views(lists)
        assert touches.root == reference_root(lists) and touches.height == h
        assert dict(touches.entries) == entries and dict(touches.peaks) == peaks
        assert dict(touches.buckets) == buckets
        assert {a: list(p) for a, p in touches.positions.items()} == lists
        for a in rng.sample(sorted(lists), min(4, len(lists))):
            k = rng.randrange(1, len(lists[a]) + 1)
            pr = touches.prove(a, k)
            others = [(bytes.fromhex(x), n, bytes.fromhex(r)) for x, n, r in pr["bucket"]]
            path = [bytes.fromhex(p) for p in pr["path"]]
            right = [bytes.fromhex(r) for r in pr["right"]]
            assert pr["count"] == touches.count(a) == len(lists[a])
            root = touches.root
            assert (
                t.check_account(root, a, lists[a][:k], len(lists[a]), right, others, path) is None
            )
    assert touches.bucket_tree.form == form


@pytest.mark.parametrize(
    ("shape", "private"), [("adversarial", 0.0), ("amm", 0.0), ("clusters", 0.3), ("zipf", 0.1)]
)
def test_ledger_touch_roots_equal_the_reference(tmp_path: Path, shape: str, private: float) -> None:
    """Chains appended through a ledger (proposals, validation, private transactions through
    their public access sets, pools): every header's ``touch_root`` equals the one rebuilt
    from the stored blocks' envelopes, also after a reopen (the map built whole, then
    extended)."""
    wl = Workload(shape, n_accounts=24, n_shards=3, seed=5, private_share=private)
    with ll.Ledger.create(tmp_path / "l", wl.genesis()) as led:
        list(wl.blocks(led, 6, 12))
        lists = touch_lists(led)
        assert led.header(led.height).touch_root == reference_root(lists)
        for h in range(1, led.height):
            upto = {a: [p for p in ps if p >> 32 <= h] for a, ps in lists.items()}
            assert led.header(h).touch_root == reference_root({a: p for a, p in upto.items() if p})
    with ll.Ledger.open(tmp_path / "l") as again:
        list(wl.blocks(again, 3, 12))
        assert again.header(again.height).touch_root == reference_root(touch_lists(again))
