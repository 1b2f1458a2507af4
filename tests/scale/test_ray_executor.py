"""``states(executor="ray")`` on a real local Ray cluster: answers equal ``state()`` and the
pure-Python replay whatever the worker count; replicas behind, on another chain or named per
node; no Ray process left once the executor is closed. Ray starts in seconds: one start."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.workloads import Workload

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    """Live (non-zombie) processes below ``pid``, from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def test_ray_executor_on_a_local_cluster(tmp_path: Path) -> None:
    wl = Workload("zipf", n_accounts=30, n_shards=3, seed=21, private_share=0.2)
    keyring = ll.Keyring(wl.keys)
    with ll.Ledger.create(tmp_path / "scratch", wl.genesis()) as scratch:
        blocks = list(wl.blocks(scratch, 8, 25))
    path, behind = tmp_path / "chain", tmp_path / "behind"
    for target, n in ((path, 8), (behind, 3)):
        with ll.Ledger.create(target, wl.genesis()) as led:
            for b in blocks[:n]:
                led.append(b)
    with ll.Ledger.create(tmp_path / "fork", wl.genesis()) as led:  # same chain up to 7
        for b in blocks[:7]:
            led.append(b)
        led.append(led.propose([], proposer=wl.issuer))
    other = Workload("zipf", n_accounts=10, n_shards=3, seed=22)
    with ll.Ledger.create(tmp_path / "other", other.genesis()) as led:
        list(other.blocks(led, 2, 5))
    accounts = [k.account for k in wl.keys] + [wl.pool, b"\x05" * 32]
    refs = {h: replay_chain(wl.genesis(), blocks[:h], keyring)[0] for h in (5, 8)}
    zero = ll.AccountState(0, {})

    before = _descendants(os.getpid())
    with ll.Ledger.open(path, keyring=keyring) as led:
        ex = ll.RayExecutor(workers=2, wait_s=0.5)  # starts a local Ray: close() stops it
        try:
            for h in (5, 8):
                want = {a: refs[h].get(a, zero) for a in accounts}
                assert led.states(accounts, h) == want
                assert led.states(accounts, h, executor=ex) == want
                assert led.states(accounts, h, executor=ex, workers=1) == want
            # the named executor joins the running Ray; Ledger.close() stops its actors
            assert led.states(accounts, executor="ray", workers=3) == led.states(accounts)
            assert led.states([], executor=ex) == {}
            ray.kill(ex._actors[0])  # an actor dies (its node is lost): a typed error...
            with pytest.raises(ll.RayUnavailable):
                led.states(accounts, 8, executor=ex)
            assert led.states(accounts, 8, executor=ex) == want  # ...and a fresh pool next

            with pytest.raises(ll.ReplicaBehind) as late:
                led.states(accounts, 8, executor=ll.RayExecutor(replica_path=behind, wait_s=0.3))
            assert (late.value.height, late.value.wanted) == (3, 8)
            with pytest.raises(ll.ReplicaMismatch):
                led.states(accounts, executor=ll.RayExecutor(replica_path=tmp_path / "other"))
            fork = ll.RayExecutor(replica_path=tmp_path / "fork", workers=1)
            with pytest.raises(ll.ReplicaMismatch, match="fork"):  # another block 8
                led.states(accounts, 8, executor=fork)
            assert led.states(accounts, 5, executor=fork) == {  # blocks 1..5 are the same
                a: refs[5].get(a, zero) for a in accounts
            }
            fork.close()
            with pytest.raises(ll.StorageError):  # no ledger there
                led.states(accounts, executor=ll.RayExecutor(replica_path=tmp_path / "none"))

            # a replica named for this node (by IP) beats the default path; it is behind
            # and catches up while the actors wait
            here = ray.util.get_node_ip_address()
            waiting = ll.RayExecutor(
                replica_path=tmp_path / "none", replicas={here: str(behind)}, wait_s=60
            )
            with ll.Ledger.open(behind) as follower:

                def follow() -> None:
                    time.sleep(0.5)
                    for b in blocks[3:8]:
                        follower.append(b)

                t = threading.Thread(target=follow)
                t.start()
                try:
                    got = led.states(accounts, 8, executor=waiting, workers=2)
                finally:
                    t.join()
            assert got == {a: refs[8].get(a, zero) for a in accounts}
            waiting.close()
        finally:
            ex.close()
    assert not ray.is_initialized()
    started = _descendants(os.getpid()) - before
    deadline = time.monotonic() + 60  # Ray's processes exit on their own after shutdown
    while started and time.monotonic() < deadline:
        time.sleep(0.2)
        started &= _descendants(os.getpid())
    assert not started, f"Ray processes left behind: {sorted(started)}"


def test_ray_executor_arguments() -> None:
    for bad in ({"workers": 0}, {"workers": True}, {"wait_s": -1}, {"address": 5}):
        with pytest.raises(ll.InvalidRequest):
            ll.RayExecutor(**bad)  # type: ignore[arg-type]
