"""Bad input over HTTP gets a 4xx with a message, never a 5xx (in-process ASGI app)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest
from nodehelp import PROPOSER, USERS, node_genesis, wait_until

import lazyledger as ll
from lazyledger.node.app import create_app
from lazyledger.node.config import NodeConfig
from lazyledger.node.producer import AuthorityProducer
from lazyledger.node.service import NodeService

with warnings.catch_warnings():  # starlette warns about httpx at import; the client works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def make_client(tmp_path: Path, mode: str = "proposer", **settings: object) -> TestClient:
    cfg = NodeConfig(datadir=tmp_path, **settings)  # type: ignore[arg-type]
    led = ll.Ledger.create(tmp_path / "ledger", node_genesis(), workers=1)
    service = NodeService(led, cfg, mode)
    producer = AuthorityProducer(PROPOSER) if mode == "proposer" else None
    return TestClient(create_app(service, producer))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, block_interval=0.05, max_body_bytes=4096) as c:
        yield c


def tx(sender: ll.Keypair, nonce: int, amount: int = 5) -> ll.Transaction:
    return ll.transfer(sender, nonce=nonce, to=USERS[5].account, asset=0, amount=amount)


def expect(r: object, status: int, words: str) -> None:
    """A JSON error with ``status`` whose message mentions ``words``."""
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert words in err["message"], err


def test_broadcast_then_query(client: TestClient) -> None:
    t = tx(USERS[0], 0)
    r = client.post("/broadcast_tx_sync", json={"tx": t.raw.hex()})
    assert r.status_code == 200 and r.json()["hash"] == t.id.hex()
    r = client.post("/broadcast_tx_sync", json={"tx": t.raw.hex()})
    assert r.status_code == 200  # idempotent resubmission
    wait_until(lambda: client.get("/tx", params={"id": t.id.hex()}).status_code == 200, "a block")
    state = client.get("/state", params={"account": USERS[5].account.hex()}).json()
    assert state["balances"] == {"0": 10_005} and state["height"] >= 1
    r = client.get("/receipt", params={"id": t.id.hex()}).json()
    assert r["applied"] is True
    blk = client.get("/block", params={"height": 1, "encoding": "raw"})
    assert ll.Block.from_bytes(blk.content).header.height == 1
    assert client.get("/block", params={"height": 1}).json()["header"]["height"] == 1
    assert client.get("/nonce", params={"account": USERS[0].account.hex()}).json()["next"] == 1


def test_malformed_bodies(client: TestClient) -> None:
    post = "/broadcast_tx_sync"
    expect(client.post(post, content=b"{not json"), 400, "JSON")
    expect(client.post(post, content=b"\xff\xfe"), 400, "JSON")
    expect(client.post(post, json=[1, 2]), 400, "JSON object")
    expect(client.post(post, json={"tx": 5}), 400, "JSON object")
    expect(client.post(post, json={"tx": "zz"}), 400, "not hex")
    expect(client.post(post, json={"tx": "00"}), 422, "magic")  # hex, so well-formed
    expect(client.post(post, json={"tx": "0"}), 400, "not hex")
    expect(client.post(post, json={"tx": "00 11"}), 400, "not hex")
    expect(client.post(post, content=b"x" * 5000), 413, "limit")
    expect(client.post(post, json={"tx": "ab" * 4000}), 413, "limit")


def test_invalid_transactions(client: TestClient) -> None:
    post = "/broadcast_tx_sync"
    good = tx(USERS[0], 0)
    bad_sig = ll.Transaction.from_bytes(good.raw[:-1] + bytes([good.raw[-1] ^ 1]))
    expect(client.post(post, json={"tx": bad_sig.raw.hex()}), 422, "signature")
    other_chain = ll.transfer(
        USERS[0], nonce=0, to=USERS[1].account, asset=0, amount=1, chain_id="elsewhere"
    )
    expect(client.post(post, json={"tx": other_chain.raw.hex()}), 422, "elsewhere")
    unknown_asset = ll.transfer(USERS[0], nonce=0, to=USERS[1].account, asset=9, amount=1)
    expect(client.post(post, json={"tx": unknown_asset.raw.hex()}), 422, "unknown asset")
    assert client.post(post, json={"tx": good.raw.hex()}).status_code == 200
    expect(client.post(post, json={"tx": tx(USERS[0], 0, 6).raw.hex()}), 409, "nonce 0")


def test_bad_query_parameters(client: TestClient) -> None:
    acct = USERS[0].account.hex()
    expect(client.get("/state"), 400, "missing parameter 'account'")
    expect(client.get("/state", params={"account": "xyz"}), 400, "not hex")
    expect(client.get("/state", params={"account": "ab"}), 400, "32 bytes")
    expect(client.get("/state", params={"account": acct, "height": "-1"}), 400, "integer")
    expect(client.get("/state", params={"account": acct, "height": "1e3"}), 400, "integer")
    expect(client.get("/state", params={"account": acct, "height": "99"}), 404, "outside")
    expect(client.get("/state", params={"account": acct, "proof": "maybe"}), 400, "proof")
    expect(client.get(f"/state?account={acct}&account={acct}"), 400, "2 times")
    expect(client.get("/slice", params={"account": acct, "height": "99999"}), 404, "outside")
    expect(client.get("/block", params={"height": "0"}), 404, "block")
    expect(client.get("/block", params={"height": "7"}), 404, "outside")
    expect(client.get("/block", params={"height": "1", "encoding": "xml"}), 400, "encoding")
    expect(client.get("/block", params={"height": "1", "encoding": ""}), 400, "encoding")
    expect(client.get("/block"), 404, "only its genesis")
    expect(client.get("/state", params={"account": acct, "proof": "yes"}), 400, "proof")
    expect(client.get("/state", params={"account": acct, "height": str(2**63)}), 400, "integer")
    expect(client.get("/header", params={"height": "99999999999999999999"}), 400, "integer")
    expect(client.get("/headers", params={"start": "2", "stop": "1"}), 422, "start")
    expect(client.get("/headers", params={"start": "1", "stop": "5"}), 404, "outside")
    expect(client.get("/tx", params={"id": "00" * 32}), 404, "no transaction")
    expect(client.get("/receipt", params={"id": "00" * 32}), 404, "no transaction")
    expect(client.get("/nope"), 404, "Not Found")
    expect(client.delete("/state"), 405, "Method Not Allowed")


def test_unknown_accounts_have_an_empty_state(client: TestClient) -> None:
    r = client.get("/state", params={"account": "11" * 32, "height": "0", "proof": "1"})
    assert r.status_code == 200
    assert r.json()["nonce"] == 0 and r.json()["balances"] == {}


def test_blobs(client: TestClient) -> None:
    data = b"weights or data"
    key = blake3.blake3(data).hexdigest()
    assert client.put(f"/blob/{key}", content=data).status_code == 201
    assert client.get(f"/blob/{key}").content == data
    expect(client.put(f"/blob/{'00' * 32}", content=data), 422, "hash")
    expect(client.get(f"/blob/{'00' * 32}"), 404, "no blob")
    expect(client.get("/blob/xyz"), 400, "hex")
    assert client.get(f"/blob/0x{key}").content == data  # as /openapi.json allows
    r = client.delete(f"/blob/{key}")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT"}
    expect(client.put(f"/blob/{key}?kind=spec", content=data), 422, "")
    expect(client.put(f"/blob/{key}?kind=nonsense", content=data), 400, "kind")


def test_full_mempool_answers_429(tmp_path: Path) -> None:
    with make_client(tmp_path, block_interval=3600.0, mempool_size=3) as c:
        for n in range(3):
            assert c.post("/broadcast_tx_sync", json={"tx": tx(USERS[1], n).raw.hex()}).is_success
        expect(c.post("/broadcast_tx_sync", json={"tx": tx(USERS[1], 3).raw.hex()}), 429, "full")
        assert c.get("/status").json()["mempool"] == {"size": 3, "capacity": 3}


def test_an_observer_takes_no_transactions(tmp_path: Path) -> None:
    with make_client(tmp_path, mode="observer") as c:
        expect(c.post("/broadcast_tx_sync", json={"tx": tx(USERS[1], 0).raw.hex()}), 403, "")
        assert c.get("/status").json()["mode"] == "observer"


def test_batch_broadcast(client: TestClient) -> None:
    good = [tx(USERS[1], n) for n in range(3)]
    clash = ll.transfer(USERS[1], nonce=2, to=USERS[4].account, asset=0, amount=1)  # nonce taken
    bad = ll.Transaction(good[0].chain_id, good[0].public_key, 3, good[0].call, good[0].signature)
    r = client.post("/broadcast_txs", json={"txs": [t.raw.hex() for t in [*good, clash, bad]]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["code"] for x in results] == [0, 0, 0, 409, 422]
    assert [x["hash"] for x in results[:3]] == [t.id.hex() for t in good]
    assert "signature" in results[4]["log"]
    wait_until(
        lambda: client.get("/tx", params={"id": good[2].id.hex()}).status_code == 200, "a block"
    )
    expect(client.post("/broadcast_txs", json={"txs": []}), 400, "1..256")
    expect(client.post("/broadcast_txs", json={"txs": ["zz"]}), 400, "not hex")
    expect(client.post("/broadcast_txs", json={"tx": good[0].raw.hex()}), 400, "txs")


def test_cometbft_routes(client: TestClient) -> None:
    first, second = tx(USERS[2], 0), tx(USERS[2], 1)
    r = client.get("/broadcast_tx_sync", params={"tx": "0x" + first.raw.hex()})
    assert r.status_code == 200 and r.json()["hash"] == first.id.hex(), r.text
    assert client.post("/broadcast_tx_sync", json={"tx": second.raw.hex()}).is_success
    pending = client.get("/num_unconfirmed_txs").json()
    assert pending["n_txs"] == pending["total"] <= 2
    assert pending["total_bytes"] == pending["n_txs"] * len(first.raw)
    wait_until(lambda: client.get("/tx", params={"id": second.id.hex()}).is_success, "a block")
    assert client.get("/num_unconfirmed_txs").json() == {"n_txs": 0, "total": 0, "total_bytes": 0}
    head = client.get("/status").json()["height"]
    assert client.get("/block").json()["header"]["height"] == head  # no height: the head
    assert client.get("/header").json()["height"] == head
    chain = client.get("/blockchain").json()
    assert chain["last_height"] == head
    assert [m["header"]["height"] for m in chain["block_metas"]] == list(range(head, 0, -1))
    assert sum(m["num_txs"] for m in chain["block_metas"]) == 2
    one = client.get("/blockchain", params={"minHeight": 1, "maxHeight": 1}).json()
    assert [m["block_id"] for m in one["block_metas"]] == [
        client.get("/header", params={"height": 1}).json()["id"]
    ]
    assert client.get("/blockchain", params={"minHeight": head + 5}).json()["block_metas"] == []
    expect(client.get("/blockchain", params={"minHeight": 3, "maxHeight": 2}), 422, "above")
    expect(client.get("/blockchain", params={"minHeight": 0}), 404, "block")
    vals = client.get("/validators").json()
    assert vals["validators"] == [
        {"address": PROPOSER.account.hex(), "pub_key": PROPOSER.public_key.hex(), "voting_power": 1}
    ]
    assert vals["count"] == vals["total"] == 1 and vals["block_height"] == head
    expect(client.get("/validators", params={"height": head + 1}), 404, "outside")
    net = client.get("/net_info").json()
    assert net["listening"] is True and net["n_peers"] == 0 and net["peers"] == []
    expect(client.get("/broadcast_tx_sync", params={"tx": "zz"}), 400, "not hex")
    expect(client.get("/broadcast_tx_sync"), 400, "missing parameter 'tx'")


def test_a_blockchain_page_is_bounded(tmp_path: Path) -> None:
    with make_client(tmp_path, block_interval=0.02) as c:
        for n in range(25):
            assert c.post("/broadcast_tx_sync", json={"tx": tx(USERS[3], n).raw.hex()}).is_success
            wait_until(
                lambda n=n: (
                    c.get("/nonce", params={"account": USERS[3].account.hex()}).json()["committed"]
                    > n
                ),
                "a block",
            )
        metas = c.get("/blockchain").json()["block_metas"]
        head = c.get("/status").json()["height"]
        assert len(metas) == 20 and metas[0]["header"]["height"] == head
        assert metas[-1]["header"]["height"] == head - 19
