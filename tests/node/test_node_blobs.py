"""Blobs on a real network (node processes on loopback): a proposer refuses a claim on a blob
nobody published, a follower fetches every blob a block references together with the block,
and a follower whose upstream withholds a blob refuses that block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from nodehelp import PROPOSER, USERS, NodeProcess, make_datadir, wait_until

import lazyledger as ll
from lazyledger.client import Client, NodeError
from lazyledger.materialize import dnn
from lazyledger.materialize.host import blob_hash
from lazyledger.materialize.train import train
from lazyledger.node.producer import hold_back

SPEC = dnn.ModelSpec.mlp(64, (8,), 10, input_shift=4)
OWNER, PROVIDER, ATTACKER, PAYEE = USERS[:4]
CHAIN = "node-test"


class Withholding(ThreadingHTTPServer):
    """A real HTTP proxy in front of a node that forwards everything but answers 404 to every
    blob request: an upstream that serves blocks and withholds their blobs."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", 0), _Proxy)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Proxy(BaseHTTPRequestHandler):
    server: Withholding

    def _relay(self) -> None:
        if self.path.startswith("/blob/"):
            self._answer(404, b'{"error": {"kind": "NotFound", "message": "withheld"}}', {})
            return
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else None
        keep = {k: v for k, v in self.headers.items() if k.lower().startswith("x-lazyledger")}
        r = httpx.request(
            self.command, self.server.upstream + self.path, content=body, headers=keep, timeout=30
        )
        self._answer(r.status_code, r.content, {"content-type": r.headers["content-type"]})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in {"content-type": "application/json", **headers}.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _relay

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    train_blob, val_blob = dnn.digits_blobs()
    return {
        "spec": SPEC.to_bytes(),
        "train": train_blob,
        "val": val_blob,
        "good": train(SPEC, train_blob, epochs=2, seed=0),
        "withheld": train(SPEC, train_blob, epochs=2, seed=3),
    }


@pytest.fixture(scope="module")
def network(
    spawn: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    root = tmp_path_factory.mktemp("blobnet")
    p_dir, genesis_file = make_datadir(root, "proposer", key=True)
    proposer = spawn(p_dir, "--genesis", str(genesis_file), "--block-interval", "0.1")
    follower = spawn(root / "follower", "--follow", proposer.url)
    proxy = Withholding(proposer.url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    starved = spawn(root / "starved", "--follow", proxy.url)
    yield proposer, follower, starved
    proxy.shutdown()
    proxy.server_close()
    thread.join()


def has_blob(node: NodeProcess, key: bytes) -> bool:
    return httpx.get(f"{node.url}/blob/{key.hex()}", timeout=30).status_code == 200


def test_blobs_travel_with_blocks_and_withheld_ones_never_enter(
    network: tuple[NodeProcess, NodeProcess, NodeProcess], blobs: dict[str, bytes]
) -> None:
    proposer, follower, starved = network
    h = {name: blob_hash(b) for name, b in blobs.items()}
    verdict = dnn.check_claim(SPEC, blobs["good"], blobs["val"], 1)
    assert verdict.correct > 0
    with Client(proposer.url) as p, Client(follower.url) as f, Client(starved.url) as s:
        wait_until(lambda: s.status()["height"] == p.status()["height"], "the starved follower")
        for name in ("spec", "train", "val"):
            f.put_blob(blobs[name])  # a follower passes a published blob on to its proposer
            assert has_blob(proposer, h[name])
        job = ll.dnn_job(
            OWNER,
            nonce=p.nonce(OWNER.account),
            spec=h["spec"],
            train=h["train"],
            validation=h["val"],
            threshold_permille=max(1, verdict.correct * 1000 // verdict.total),
            asset=0,
            bounty=500,
            chain_id=CHAIN,
        )
        f.wait_receipt(f.broadcast(job), 60)
        job_height = f.transaction(job.id)[0][0]
        j = ll.job_account(job.id)
        bad = ll.dnn_claim(ATTACKER, nonce=p.nonce(ATTACKER.account), job=j, weights=h["withheld"])
        with pytest.raises(NodeError) as err:
            p.broadcast(bad)  # a claim on a blob nobody published is refused at admission
        assert err.value.status == 422 and h["withheld"].hex() in str(err.value)
        with pytest.raises(NodeError) as err:
            f.broadcast(bad)
        assert err.value.status == 422
        p.put_blob(blobs["good"])  # published to the proposer only
        good = ll.dnn_claim(PROVIDER, nonce=p.nonce(PROVIDER.account), job=j, weights=h["good"])
        assert p.wait_receipt(p.broadcast(good), 60).applied
        start = p.nonce(PROVIDER.account)
        pay = ll.transfer(
            PROVIDER, nonce=start, to=PAYEE.account, asset=0, amount=300, chain_id=CHAIN
        )
        f.wait_receipt(f.broadcast(pay), 60)
        # the follower fetched the weights with the claim's block and judges it itself
        assert has_blob(follower, h["good"])
        assert f.receipt(good.id).applied
        assert f.state(PROVIDER.account) == p.state(PROVIDER.account)
        assert f.state(PAYEE.account).balances == {0: 10_300}
        listed = httpx.get(f"{proposer.url}/block_blobs", params={"height": job_height}).json()
        assert listed == {
            "height": job_height,
            "blobs": [h["spec"].hex(), h["train"].hex(), h["val"].hex()],
        }
        with pytest.raises(NodeError) as err:
            p.transaction(bad.id)
        assert err.value.status == 404
        # behind an upstream that withholds blobs, a follower refuses the job's block
        wait_until(
            lambda: "not held by this node" in str(s.status().get("upstream", {}).get("error")),
            "the starved follower to refuse the block",
        )
        assert s.status()["height"] == job_height - 1
        assert not has_blob(starved, h["spec"])


def test_a_proposer_holds_back_what_names_a_missing_blob(
    tmp_path: Path, blobs: dict[str, bytes]
) -> None:
    """Transactions a proposer took earlier whose blob it no longer holds stay out of its
    block, with every later one of the same sender, so the block stays valid."""
    g = ll.Genesis(
        CHAIN,
        2,
        [PROPOSER.public_key],
        {0: PROPOSER.account},
        {u.account: {0: 10_000} for u in USERS},
    )
    with ll.Ledger.create(tmp_path / "x", g) as led:
        for name in ("spec", "train", "val"):
            led.put_blob(blobs[name])
        job = ll.dnn_job(
            OWNER,
            nonce=0,
            spec=blob_hash(blobs["spec"]),
            train=blob_hash(blobs["train"]),
            validation=blob_hash(blobs["val"]),
            threshold_permille=1,
            asset=0,
            bounty=10,
        )
        led.append(led.propose([job], PROPOSER))
        j = ll.job_account(job.id)
        claim = ll.dnn_claim(ATTACKER, nonce=0, job=j, weights=blob_hash(blobs["withheld"]))
        after = ll.transfer(ATTACKER, nonce=1, to=PAYEE.account, asset=0, amount=1)
        other = ll.transfer(PROVIDER, nonce=0, to=PAYEE.account, asset=0, amount=2)
        infer = ll.dnn_infer(OWNER, nonce=1, job=j, inputs=blob_hash(blobs["val"]), count=1)
        ready = hold_back(led, [claim, other, after, infer])
        assert ready == [other, infer]
        led.append(led.propose(ready, PROPOSER))
        led.put_blob(blobs["withheld"])  # published: it goes in with what waited behind it
        assert hold_back(led, [claim, after]) == [claim, after]
