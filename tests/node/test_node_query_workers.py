"""A node with 2 query worker processes (read-only handles) beside its appending process:
answers equal a single-process node's, keep coming while blocks are appended, /metrics labels
each worker, and the workers go when their owner is SIGKILLed."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from nodehelp import USERS, NodeProcess, make_datadir, wait_until
from prometheus_client.parser import text_string_to_metric_families

import lazyledger as ll
from lazyledger.client import Client

Spawn = Callable[..., NodeProcess]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(spawn: Spawn, tmp_path_factory: pytest.TempPathFactory) -> tuple[NodeProcess, NodeProcess]:
    root = tmp_path_factory.mktemp("query")
    p_dir, genesis_file = make_datadir(root, "proposer", key=True)
    proposer = spawn(
        p_dir, "--genesis", str(genesis_file), "--block-interval", "0.1", "--query-workers", "2"
    )
    single = spawn(root / "single", "--follow", proposer.url)  # answers every query itself
    return proposer, single


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _send(client: Client, stop: threading.Event, sent: list[bytes], failed: list[str]) -> None:
    """Transfers between the test users, one after another, until ``stop``."""
    k = 0
    try:
        while not stop.is_set():
            sender, to = USERS[k % len(USERS)], USERS[(3 * k + 1) % len(USERS)]
            nonce = client.nonce(sender.account)
            tx = ll.transfer(
                sender, nonce=nonce, to=to.account, asset=0, amount=1 + k % 50, chain_id="node-test"
            )
            sent.append(client.broadcast(tx))
            k += 1
            time.sleep(0.02)
    except Exception as e:  # reported by the test, not lost in the thread
        failed.append(repr(e))


def test_workers_answer_as_one_process_does_while_blocks_are_appended(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    proposer, single = pair
    stop, sent, failed = threading.Event(), [], []
    sender = threading.Thread(target=_send, args=(Client(proposer.url), stop, sent, failed))
    sender.start()
    answers: list[dict[str, object]] = []
    heights: set[int] = set()
    try:
        end = time.monotonic() + 120
        with httpx.Client(base_url=proposer.url, timeout=30) as http:
            while len(heights) < 4 and time.monotonic() < end:
                for user in USERS:
                    head = http.get("/status").json()["height"]
                    r = http.get("/state", params={"account": user.account.hex()})
                    assert r.status_code == 200, r.text
                    doc = r.json()
                    assert doc["height"] >= head  # never older than the owner's head
                    answers.append(doc)
                    heights.add(doc["height"])
    finally:
        stop.set()
        sender.join()
    assert not failed, failed
    assert len(heights) >= 4, heights  # answered while the owner appended blocks
    # no empty blocks are cut: once the last transfer is in, the owner's head stays put, so
    # answers that name the head (/blockchain's last_height) agree with the follower's
    Client(proposer.url).wait_receipt(sent[-1], timeout=60)
    top = Client(proposer.url).status()["height"]
    assert top >= max(heights)
    wait_until(lambda: Client(single.url).status()["height"] >= top, "the follower", 90)

    with httpx.Client(base_url=single.url, timeout=30) as one:
        for doc in answers:
            r = one.get("/state", params={"account": doc["account"], "height": doc["height"]})
            assert r.json() == doc
    queries = [
        ("/slice", {"account": USERS[0].account.hex(), "height": str(top)}),
        ("/state", {"account": USERS[1].account.hex(), "height": "1"}),
        ("/block", {"height": str(top)}),
        ("/header", {"height": "2"}),
        ("/headers", {"start": "1", "stop": str(top)}),
        ("/blockchain", {"maxHeight": str(top)}),
        ("/receipt", {"id": sent[0].hex()}),
        ("/tx", {"id": sent[-1].hex()}),
        ("/state", {"account": "zz"}),  # errors too: 400
        ("/state", {"account": USERS[0].account.hex(), "height": str(10**9)}),  # 404
        ("/tx", {"id": "00" * 32}),  # 404
    ]
    with httpx.Client(base_url=proposer.url) as many, httpx.Client(base_url=single.url) as one:
        for path, params in queries:
            a, b = many.get(path, params=params), one.get(path, params=params)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path
        served = {}
        text = many.get("/metrics").text
    for fam in text_string_to_metric_families(text):
        if fam.name == "lazyledger_http_request_seconds":
            for s in fam.samples:
                if s.name.endswith("_count") and s.labels["route"] == "/state":
                    served[s.labels["worker"]] = served.get(s.labels["worker"], 0) + s.value
    assert served.get("1", 0) > 0 and served.get("2", 0) > 0, served  # both workers answered
    assert served["owner"] >= served["1"] + served["2"]  # every one came in through the owner


def test_workers_leave_with_their_owner(pair: tuple[NodeProcess, NodeProcess]) -> None:
    proposer, _ = pair
    assert proposer.proc is not None
    workers = _children(proposer.proc.pid)
    assert len(workers) >= 2  # the two query workers (and nothing else needed)
    proposer.stop(signal.SIGKILL)  # no chance to stop them: they notice and exit
    wait_until(lambda: not any(_alive(p) for p in workers), "the workers to exit", 60)
