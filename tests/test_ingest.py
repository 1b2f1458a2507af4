"""The split Ledger: a facade keeping every public name it had, over an ingestor and a
materialiser sharing one head; the index ingestion extends block by block equals the index a
fresh handle builds from the store; a stream of appends (the pipeline) stores what one append
per block stores, and stops at a refused block as append would."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

import lazyledger as ll
from lazyledger.bench import chains
from lazyledger.ingest import Ingestor
from lazyledger.materialize import engine
from lazyledger.materialize.engine import Materializer
from lazyledger.materialize.reference import replay_chain
from lazyledger.shards.merkle import root
from lazyledger.store import TABLES
from lazyledger.workloads import EthereumShape, Workload

PUBLIC = {
    # methods and properties of Ledger before the split (DESIGN.md's API and what the node,
    # the CLI, scale/, bench/ and tests call)
    "append", "append_many", "block", "block_blobs", "blocks", "check_transaction",
    "checkpoint_count", "close", "cost", "create", "drop_checkpoints", "get_blob", "has_blob",
    "head_id", "header", "height", "job", "job_terms", "job_transaction", "missing_blobs",
    "nonce", "open", "position", "propose", "put_blob", "readonly", "receipt", "refresh",
    "replay_all", "run_checkpoint_policy", "section", "slice", "state", "states",
    "storage_stats", "touch_proofs", "transaction", "wait_checkpoints",
    # helpers benchmarks and tests reach for
    "_account_id", "_genesis_sorted", "_index", "_sent", "_slice", "_touch_map",
}  # fmt: skip
ATTRIBUTES = {
    "blob_rule", "checkpoint_min_rows", "checkpoint_policy", "cost_model", "dense_fraction",
    "dense_min_rows", "genesis", "genesis_id", "keyring", "n_shards", "ops", "store", "validator",
}  # fmt: skip


def test_the_facade_keeps_every_name(ledger: ll.Ledger) -> None:
    for name in PUBLIC | ATTRIBUTES:
        assert hasattr(ledger, name), name
    assert isinstance(ledger.ingestor, Ingestor)
    assert isinstance(ledger.materializer, Materializer)
    assert ledger.ingestor.head is ledger.materializer.head is ledger.head


def test_settings_reach_the_materialiser(ledger: ll.Ledger) -> None:
    ledger.checkpoint_min_rows = 7
    ledger.dense_fraction, ledger.dense_min_rows = 0.5, 11
    policy = ll.CheckpointPolicy.epochs(every=3)
    ledger.checkpoint_policy = policy
    m = ledger.materializer
    assert (m.checkpoint_min_rows, m.dense_fraction, m.dense_min_rows) == (7, 0.5, 11)
    assert m.checkpoint_policy is policy and ledger.cost_model is m.cost_model


def test_a_bad_policy_is_refused_before_anything_is_created(
    tmp_path: Path, genesis: ll.Genesis
) -> None:
    with pytest.raises(ll.InvalidRequest, match="CheckpointPolicy"):
        ll.Ledger.create(tmp_path / "c", genesis, checkpoint_policy="hubs")  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
    ll.Ledger.create(tmp_path / "c", genesis).close()
    with pytest.raises(ll.InvalidRequest, match="CheckpointPolicy"):
        ll.Ledger.open(tmp_path / "c", checkpoint_policy=3)  # type: ignore[arg-type]
    ll.Ledger.open(tmp_path / "c").close()  # no handle was left open


@pytest.mark.parametrize(("batch", "queue"), [(1, 1), (1, 5), (3, 1000), (3, 2)])
def test_the_index_extended_by_appends_equals_one_built_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, queue: int
) -> None:
    """Whether the queued records are indexed every section, every few or only when read."""
    monkeypatch.setattr(engine, "INDEX_BATCH", queue)
    wl = Workload("zipf", n_accounts=40, n_shards=3, seed=batch + queue, private_share=0.1)
    with ll.Ledger.create(tmp_path / "source", wl.genesis()) as src:
        blocks = list(wl.blocks(src, 8, 25))
    path = tmp_path / "chain"

    def snapshot(led: ll.Ledger) -> dict[str, object]:
        columns, _ = led.materializer.index()
        n = columns.n
        return {
            "n": n,
            "rows": columns.rows[:n].tobytes(),
            "pos": columns.pos[:n].tolist(),
            "links": columns.links[:n].tolist(),
            "names": led.materializer.accounts.names.tobytes(),
            "sent": [led._sent(k.account, h) for k in wl.keys for h in (3, led.height)],
            "nonces": [led.nonce(k.account) for k in wl.keys],
            "positions": [led.position(tx.id) for b in blocks for _, tx in b.transactions()],
        }

    with ll.Ledger.create(path, wl.genesis()) as led:
        led.nonce(wl.keys[0].account)  # the index is built now and extended by every append
        for i in range(0, len(blocks), batch):
            led.append_many(blocks[i : i + batch])
        led.append(led.propose([], wl.issuer))  # an empty block extends the index by nothing
        warm = snapshot(led)
    with ll.Ledger.open(path) as cold:
        assert snapshot(cold) == warm
    assert warm["n"] == sum(len(list(b.transactions())) for b in blocks)
    assert warm["positions"] == [pos for b in blocks for pos, _ in b.transactions()]


@pytest.mark.parametrize(("queue", "stream"), [(1, False), (3, True), (10_000, False)])
def test_accounts_first_seen_in_queued_records_keep_one_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queue: int, stream: bool
) -> None:
    """Ethereum-like blocks (a long tail of accounts first seen as payees, then paying on)
    appended while their records wait in the index's queue: every account gets one dense id,
    and states and nonces equal the reference replay's."""
    monkeypatch.setattr(engine, "INDEX_BATCH", queue)
    src = chains.ethereum_chain(
        tmp_path / "src", 900, shape=EthereumShape(mean_block=15), workers=1, on=False
    )
    blocks, genesis = list(src.ledger.blocks()), src.genesis
    src.ledger.close()
    expected, _ = replay_chain(genesis, blocks)
    with ll.Ledger.create(tmp_path / "dst", genesis) as led:
        led.nonce(bytes(32))  # the index is built now: appends queue their records
        if stream:
            assert len(list(led.append_stream(blocks))) == len(blocks)
        else:
            for b in blocks:
                led.append(b)
        names = led.materializer.accounts.names
        assert len({bytes(n) for n in names}) == len(names)
        assert led.replay_all() == expected
        touched = sorted({a for b in blocks for _, tx in b.transactions() for a in tx.access()})
        assert led.states(touched) == {a: expected[a] for a in touched}
        assert [led.nonce(a) for a in touched] == [expected[a].nonce for a in touched]


# -- append_stream: the pipeline against one append per block ---------------------------------


def stored(led: ll.Ledger) -> str:
    """A digest of every key and value of the metadata and shard environments."""
    h = hashlib.blake2b()
    for env in [led.store.meta, *led.store.shards]:
        with env.read() as txn:
            for t in TABLES:
                if t.env == env.kind:
                    for k, v in txn.cursor(env.db[t.name]):
                        h.update(bytes(k) + b"=" + bytes(v))
    return h.hexdigest()


def picture(led: ll.Ledger, wl: Workload) -> dict[str, object]:
    """What a handle answers after its appends: stored bytes, states, nonces, index, touches."""
    columns, _ = led.materializer.index()
    n = columns.n
    with led.head.lock:
        touch_root = led._touch_map().root
    return {
        "height": led.height,
        "head": led.head_id,
        "stored": stored(led),
        "states": led.replay_all(keyring=ll.Keyring(wl.keys)),
        "nonces": [led.nonce(k.account) for k in wl.keys],
        "rows": columns.rows[:n].tobytes(),
        "names": led.materializer.accounts.names.tobytes(),
        "touch_root": touch_root,
    }


def source(tmp_path: Path, wl: Workload, n: int, per_block: int) -> list[ll.Block]:
    with ll.Ledger.create(tmp_path / "source", wl.genesis()) as src:
        return list(wl.blocks(src, n, per_block))


def appended_one_by_one(path: Path, wl: Workload, blocks: list[ll.Block]) -> dict[str, object]:
    with ll.Ledger.create(path, wl.genesis()) as led:
        for b in blocks:
            led.append(b)
        return picture(led, wl)


@pytest.mark.parametrize(
    ("shape", "per_block", "depth", "workers"),
    [("zipf", 15, 1, 2), ("zipf", 15, 2, 2), ("uniform", 3, 3, 2), ("zipf", 60, 2, 2),
     ("zipf", 15, 2, 1)],
)  # fmt: skip
def test_a_stream_stores_what_one_append_per_block_stores(
    tmp_path: Path, shape: str, per_block: int, depth: int, workers: int
) -> None:
    wl = Workload(shape, n_accounts=50, n_shards=4, seed=depth, private_share=0.1)
    blocks = source(tmp_path, wl, 12, per_block)
    blocks.insert(5, _empty_after(blocks[4], wl.issuer))  # an empty block mid-stream
    with ll.Ledger.create(tmp_path / "source2", wl.genesis()) as src:  # (re-link the rest)
        blocks = _relinked(src, blocks, wl.issuer)
    reference = appended_one_by_one(tmp_path / "one", wl, blocks)
    with ll.Ledger.create(tmp_path / "stream", wl.genesis(), workers=workers) as led:
        led.append(blocks[0])  # a stream continues whatever the head is
        stream = led.ingestor.append_stream([b.to_bytes() for b in blocks[1:]], depth)
        headers = list(stream)
        assert headers == [b.header for b in blocks[1:]]
        assert picture(led, wl) == reference
    with ll.Ledger.open(tmp_path / "stream") as led:
        assert picture(led, wl) == reference


def _empty_after(parent: ll.Block, proposer: ll.Keypair) -> ll.Block:
    """A block holding nothing that follows ``parent`` (the touch lists stay as they were)."""
    n = len(parent.sections)
    header = attrs.evolve(
        parent.header,
        height=parent.header.height + 1,
        parent=parent.id,
        shard_roots=tuple(root([]) for _ in range(n)),
        shard_counts=(0,) * n,
    )
    header = attrs.evolve(header, signature=proposer.sign(header.body))
    return ll.Block(header, ((),) * n)


def _relinked(src: ll.Ledger, blocks: list[ll.Block], proposer: ll.Keypair) -> list[ll.Block]:
    """The transactions of ``blocks`` proposed again, block by block, on ``src``."""
    out = []
    for b in blocks:
        block = src.propose([tx for _, tx in b.transactions()], proposer)
        src.append(block)
        out.append(block)
    return out


def _tampered(led: ll.Ledger, wl: Workload, kind: str) -> ll.Block:
    """The next block of ``led``'s chain, refused for ``kind``: a transaction whose signature
    does not verify (found by the signature checks, after validation), a wrong nonce (found by
    validation) or a header whose touch root is not the touch lists' (found by the touch
    thread, in a stream)."""
    k = wl.keys[0]
    nonce = led.nonce(k.account) + (5 if kind == "nonce" else 0)
    tx = ll.transfer(k, nonce=nonce, to=wl.keys[1].account, asset=0, amount=5)
    if kind == "signature":
        tx = ll.Transaction(
            tx.chain_id, tx.public_key, tx.nonce, ll.Transfer(wl.keys[1].account, 0, 6),
            tx.signature,
        )  # fmt: skip
    block = led.propose([tx], wl.issuer)
    if kind == "touch_root":
        header = attrs.evolve(block.header, touch_root=bytes(32))
        header = attrs.evolve(header, signature=wl.issuer.sign(header.body))
        block = ll.Block(header, block.sections)
    return block


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("kind", ["signature", "nonce", "touch_root"])
@pytest.mark.parametrize("at", [0, 1, 4, 7])
def test_a_refused_block_stops_the_stream_and_keeps_the_blocks_before_it(
    tmp_path: Path, depth: int, kind: str, at: int
) -> None:
    wl = Workload("zipf", n_accounts=30, n_shards=4, seed=7)
    good = source(tmp_path, wl, 8, 10)
    with ll.Ledger.create(tmp_path / "ref", wl.genesis()) as ref:
        for b in good[:at]:
            ref.append(b)
        bad = _tampered(ref, wl, kind)
        with pytest.raises(ll.InvalidBlock) as expected:
            ref.append(bad)
        kept = picture(ref, wl)
    after = [_empty_after(bad, wl.issuer)]  # validated, perhaps, but never stored
    after.append(_empty_after(after[0], wl.issuer))
    read: list[int] = []

    def feed() -> Iterator[ll.Block]:
        for b in [*good[:at], bad, *after]:
            read.append(b.header.height)
            yield b

    with ll.Ledger.create(tmp_path / "stream", wl.genesis()) as led:
        yielded: list[ll.Header] = []
        with pytest.raises(ll.InvalidBlock) as refused:
            for header in led.ingestor.append_stream(feed(), depth):
                yielded.append(header)
        assert type(refused.value) is type(expected.value)
        assert str(refused.value) == str(expected.value)
        assert yielded == [b.header for b in good[:at]]  # every block before it, durable
        assert max(read) <= bad.header.height + depth  # the pipeline reads at most depth ahead
        assert picture(led, wl) == kept  # nothing of it or after it is stored
        for header in led.append_stream(good[at:]):  # the stream can go on from there
            assert header.height <= len(good)
        assert led.height == len(good)
    with ll.Ledger.open(tmp_path / "stream") as led:
        assert led.replay_all() == appended_one_by_one(tmp_path / "all", wl, good)["states"]


def test_a_failed_commit_mid_stream_rolls_back_what_is_in_flight(tmp_path: Path) -> None:
    """The metadata commit of the third block fails (as a full disk would): the two before
    it stay, it and the block in flight behind it leave nothing, and the store is whole."""
    wl = Workload("uniform", n_accounts=30, n_shards=4, seed=8)
    blocks = source(tmp_path, wl, 8, 12)
    with ll.Ledger.create(tmp_path / "ref", wl.genesis()) as ref:
        for b in blocks[:2]:
            ref.append(b)
        kept = picture(ref, wl)
    with ll.Ledger.create(tmp_path / "stream", wl.genesis()) as led:
        meta = led.store.meta
        original = meta.write
        calls = []

        @contextmanager
        def failing_third() -> Iterator[Any]:
            calls.append(1)
            if len(calls) == 3:
                raise ll.StorageError("simulated: the metadata environment is full")
            with original() as txn:
                yield txn

        meta.write = failing_third  # type: ignore[method-assign]
        yielded = []
        with pytest.raises(ll.StorageError, match="simulated"):
            for header in led.append_stream(blocks):
                yielded.append(header.height)
        meta.write = original  # type: ignore[method-assign]
        assert yielded == [1, 2]
        assert picture(led, wl) == kept  # the shard writes of blocks 3 and 4 rolled back
        assert list(led.append_stream(blocks[2:])) == [b.header for b in blocks[2:]]
        assert led.replay_all() == appended_one_by_one(tmp_path / "all", wl, blocks)["states"]


def test_closing_a_stream_early_lands_what_is_in_flight(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=30, n_shards=4, seed=9)
    blocks = source(tmp_path, wl, 10, 8)
    with ll.Ledger.create(tmp_path / "stream", wl.genesis()) as led:
        stream = led.ingestor.append_stream(blocks, depth=3)
        assert [next(stream).height for _ in range(2)] == [1, 2]
        stream.close()
        assert 2 <= led.height <= 2 + 3  # what was in flight is stored whole, in order
        h = led.height
        led.append_many(blocks[h:])  # the head's lock is free again
        assert led.replay_all() == appended_one_by_one(tmp_path / "all", wl, blocks)["states"]


def test_the_streaming_thread_cannot_write_from_inside_its_loop(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=20, n_shards=4, seed=10)
    blocks = source(tmp_path, wl, 4, 5)
    with ll.Ledger.create(tmp_path / "stream", wl.genesis()) as led:
        with pytest.raises(ll.InvalidRequest, match="depth 0"):
            next(led.ingestor.append_stream(blocks, depth=0))
        for header in led.append_stream(blocks[:3]):
            with pytest.raises(ll.InvalidRequest, match="append_stream is open"):
                led.append(blocks[header.height])
            with pytest.raises(ll.InvalidRequest, match="append_stream is open"):
                led.nonce(wl.keys[0].account)
        assert led.height == 3  # (the refused calls changed nothing)
        led.append(blocks[3])
    with (
        ll.Ledger.open(tmp_path / "stream", readonly=True) as reader,
        pytest.raises(ll.ReadOnlyLedger),
    ):
        reader.append_stream(blocks)


class _InterruptedWait(Future[None]):
    """A commit's future whose first wait is interrupted (as by Ctrl-C) once it is done."""

    interrupted = False

    def result(self, timeout: float | None = None) -> None:
        super().result(timeout)
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


class _Committer(ThreadPoolExecutor):
    """The committer thread, with the wait for the third commit interrupted."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        real = super().submit(fn, *args, **kwargs)
        self.calls += 1
        if self.calls != 3:
            return real
        proxy = _InterruptedWait()

        def copy(f: Future[Any]) -> None:
            error = f.exception()
            if error is None:
                proxy.set_result(None)
            else:
                proxy.set_exception(error)

        real.add_done_callback(copy)
        return proxy


def test_an_interrupted_stream_keeps_memory_in_step_with_the_store(tmp_path: Path) -> None:
    """Interrupted while waiting for a commit that went through: the blocks whose commits went
    through are the head (in memory as on disk), the rest is rolled back, and the stream can
    go on from there."""
    wl = Workload("uniform", n_accounts=30, n_shards=4, seed=11)
    blocks = source(tmp_path, wl, 9, 10)
    with ll.Ledger.create(tmp_path / "stream", wl.genesis()) as led:
        led.ingestor._committer = _Committer()
        yielded = []
        with pytest.raises(KeyboardInterrupt):
            for header in led.ingestor.append_stream(blocks, depth=2):
                yielded.append(header.height)
        assert yielded == [1, 2]
        h = led.height
        assert 3 <= h <= 5  # block 3 committed; 4 and 5 were in flight
        with ll.Ledger.create(tmp_path / "ref", wl.genesis()) as ref:
            for b in blocks[:h]:
                ref.append(b)
            assert picture(led, wl) == picture(ref, wl)
        assert [x.height for x in led.append_stream(blocks[h:])] == list(range(h + 1, 10))
        assert led.replay_all() == appended_one_by_one(tmp_path / "all", wl, blocks)["states"]


@pytest.mark.parametrize("background", [False, True])
def test_a_stream_runs_the_checkpoint_policy_as_blocks_land(
    tmp_path: Path, background: bool
) -> None:
    wl = Workload("zipf", n_accounts=40, n_shards=4, seed=12)
    blocks = source(tmp_path, wl, 12, 15)
    reference = appended_one_by_one(tmp_path / "one", wl, blocks)
    policy = ll.CheckpointPolicy.epochs(every=4)
    with ll.Ledger.create(
        tmp_path / "stream", wl.genesis(), checkpoint_policy=policy,
        checkpoint_background=background,
    ) as led:  # fmt: skip
        assert [h.height for h in led.append_stream(blocks)] == list(range(1, 13))
        led.wait_checkpoints()
        assert led.checkpoint_count() > 0
        assert picture(led, wl) == reference  # checkpoints change cost, never results
        keyring = ll.Keyring(wl.keys)
        with ll.Ledger.open(tmp_path / "one", readonly=True) as one:  # (no checkpoints)
            for k in wl.keys[:10]:
                for h in (3, 6, 12):
                    expected = one.state(k.account, h, keyring=keyring)
                    assert led.state(k.account, h, keyring=keyring) == expected


def test_a_stream_sees_the_jobs_of_blocks_still_in_flight(tmp_path: Path) -> None:
    """A job, a claim on it, its reveal and an inference in consecutive blocks: each is
    validated while the blocks before it are still being stored (the job index and the job's
    terms come from the blocks in flight); a claim after the reveal is refused as append
    refuses it."""
    from lazyledger.materialize import dnn
    from lazyledger.materialize.train import train

    spec = dnn.ModelSpec.mlp(64, (32,), 10, input_shift=4)
    train_blob, val_blob = dnn.digits_blobs()
    x, y = dnn.decode_dataset(val_blob)
    data = {
        "spec": spec.to_bytes(), "train": train_blob, "val": val_blob,
        "weights": train(spec, train_blob, epochs=0, seed=1),
        "inputs": dnn.encode_dataset(x[:3], y[:3]),
    }  # fmt: skip
    owner, claimer, user, issuer = (ll.Keypair.from_seed(bytes([0x50 + i]) * 32) for i in range(4))
    genesis = ll.Genesis(
        "dnn", 3, [issuer.public_key], {0: issuer.account},
        {k.account: {0: 10_000} for k in (owner, claimer, user)}, {},
    )  # fmt: skip

    def held(path: Path) -> tuple[ll.Ledger, dict[str, bytes]]:
        led = ll.Ledger.create(path, genesis)
        return led, {name: led.put_blob(blob) for name, blob in data.items()}

    src, h = held(tmp_path / "source")
    job = ll.dnn_job(
        owner, nonce=0, spec=h["spec"], train=h["train"], validation=h["val"],
        threshold_permille=900, asset=0, bounty=50, hidden=True,
    )  # fmt: skip
    j = ll.job_account(job.id)
    txs = [
        [job],
        [ll.dnn_claim(claimer, nonce=0, job=j, weights=h["weights"])],
        [ll.dnn_reveal(owner, nonce=1, job=j)],
        [ll.dnn_infer(user, nonce=0, job=j, inputs=h["inputs"], register=0, count=3)],
    ]
    blocks = []
    for block_txs in txs:
        blocks.append(src.propose(block_txs, issuer))
        src.append(blocks[-1])
    late = src.propose([ll.dnn_claim(claimer, nonce=1, job=j, weights=h["weights"])], issuer)
    with pytest.raises(ll.InvalidBlock, match="claims are closed") as expected:
        src.append(late)
    job_info = src.job(j)
    src.close()
    for depth in (1, 3):
        led, _ = held(tmp_path / f"stream{depth}")
        with led:
            yielded = []
            with pytest.raises(ll.InvalidBlock) as refused:
                for header in led.ingestor.append_stream([*blocks, late], depth):
                    yielded.append(header)
            assert str(refused.value) == str(expected.value)
            assert yielded == [b.header for b in blocks]
            assert led.job(j) == job_info and led.height == len(blocks)
