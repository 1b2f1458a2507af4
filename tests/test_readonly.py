"""Read-only handles in other processes beside one owner: consistent answers while the owner
appends, and after it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import Workload

OWNER = """
import sys, time, lazyledger as ll
led = ll.Ledger.open(sys.argv[1])
blocks = open(sys.argv[2], "rb").read().split(b"--block--")
print("open", flush=True)
for raw in blocks:
    led.append(raw)
    print(led.height, flush=True)
    time.sleep(0.3)
print("done", flush=True)
sys.stdin.read()
"""


def _chain(tmp_path: Path) -> tuple[Path, ll.Genesis, list[ll.Block], Path]:
    """A ledger holding 3 blocks, and 9 more signed blocks saved for an owner process."""
    wl = Workload("zipf", n_accounts=30, n_shards=3, seed=12)
    scratch = tmp_path / "scratch"
    with ll.Ledger.create(scratch, wl.genesis()) as led:
        blocks = list(wl.blocks(led, 12, 20))
    path = tmp_path / "chain"
    with ll.Ledger.create(path, wl.genesis()) as led:
        for b in blocks[:3]:
            led.append(b)
    later = tmp_path / "later.bin"
    later.write_bytes(b"--block--".join(b.to_bytes() for b in blocks[3:]))
    return path, wl.genesis(), blocks, later


def test_readers_follow_the_owner_and_outlive_it(tmp_path: Path) -> None:
    path, genesis, blocks, later = _chain(tmp_path)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(path), str(later)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "open"
        with pytest.raises(ll.StorageError):  # the owner holds the ledger's LOCK
            ll.Ledger.open(path)
        accounts = sorted({a for b in blocks for _, tx in b.transactions() for a in tx.access()})
        refs = [replay_chain(genesis, blocks[:h])[0] for h in range(len(blocks) + 1)]
        with ll.Ledger.open(path, readonly=True) as reader:
            seen = set()
            deadline = time.monotonic() + 60
            while reader.refresh() < 8 and time.monotonic() < deadline:
                h = reader.height
                seen.add(h)
                for a in accounts[::5]:  # each answer is the state at the height it names
                    assert reader.state(a, h) == refs[h].get(a, ll.AccountState(0, {}))
            assert len(seen) > 1  # it answered while the owner was appending
            os.kill(owner.pid, signal.SIGKILL)
            owner.wait()
            h = reader.refresh()  # the owner is gone: the reader keeps answering
            assert h >= 8
            assert reader.states(accounts, h) == {
                a: refs[h].get(a, ll.AccountState(0, {})) for a in accounts
            }
            for bad in (
                lambda: reader.append(blocks[h]),
                lambda: reader.put_blob(b"data"),
                lambda: reader.drop_checkpoints(),
                lambda: reader.run_checkpoint_policy(ll.CheckpointPolicy.epochs(2)),
            ):
                with pytest.raises(ll.ReadOnlyLedger):
                    bad()
            reader.checkpoint_min_rows = 1  # derived checkpoints stay in the reader's memory
            reader.state(accounts[0], h)
            assert reader.checkpoint_count() > 0
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    with ll.Ledger.open(path) as led:  # the next owner recovers; the reader wrote nothing
        assert led.checkpoint_count() == 0
        h = led.height
        assert led.replay_all() == refs[h]


def test_a_readonly_handle_needs_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(ll.StorageError):
        ll.Ledger.open(tmp_path / "nothing", readonly=True)
    path, _, _, _ = _chain(tmp_path)
    with pytest.raises(ll.ReadOnlyLedger):
        ll.Ledger.open(path, readonly=True, checkpoint_policy=ll.CheckpointPolicy.epochs(2))


def test_states_on_worker_processes_equal_states_here(tmp_path: Path) -> None:
    wl = Workload("uniform", n_accounts=25, n_shards=2, seed=3, private_share=0.2)
    keyring = ll.Keyring(wl.keys)
    with ll.Ledger.create(tmp_path / "c", wl.genesis(), keyring=keyring) as led:
        list(wl.blocks(led, 8, 20))
        accounts = [k.account for k in wl.keys] + [wl.pool, b"\x05" * 32]
        here = led.states(accounts, 6)
        assert here == {a: led.state(a, 6) for a in accounts}
        for workers in (1, 2):
            assert led.states(accounts, 6, executor="process", workers=workers) == here
        assert led.states(accounts, executor="process") == led.states(accounts)
        with pytest.raises(ll.InvalidRequest):
            led.states(accounts, executor="process", workers=0)
        with pytest.raises(ll.InvalidRequest):
            led.states(accounts, executor="threads")
