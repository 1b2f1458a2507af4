"""The node's OpenAPI schema and its handlers agree: schemathesis runs every check it has (server
errors, statuses, content types, response schemas, schema-valid input accepted, schema-invalid
input refused, Allow headers, unsupported methods, links) over every documented operation of a
real node process on 127.0.0.1, with ids, heights, blobs and signed transactions of its chain
mixed into the generated input, and must report no failure. Bounded: a fixed number of
examples per operation, a fixed seed, and a wall-clock limit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import blake3
import tomli_w
from nodehelp import USERS, NodeProcess, make_datadir, node_genesis

import lazyledger as ll
from lazyledger.client import Client
from lazyledger.node.app import create_app
from lazyledger.node.config import NodeConfig
from lazyledger.node.openapi import openapi
from lazyledger.node.service import NodeService

MAX_EXAMPLES = 50
RUN_LIMIT_S = 300

Spawn = Callable[..., NodeProcess]


def _chain_data(node: NodeProcess) -> dict[str, list[str] | list[int]]:
    """Put a few blocks and a blob on the node; return values of its chain for schemathesis to
    use beside the ones it generates."""
    with Client(node.url) as cl:
        ids = []
        for round_ in range(2):
            for i, user in enumerate(USERS):
                to = USERS[(i + 1) % len(USERS)].account
                tx = ll.transfer(user, nonce=round_, to=to, asset=0, amount=7 + i)
                ids.append(cl.broadcast(tx))
        for tx_id in ids:
            cl.wait_receipt(tx_id, 60.0)
        blob = b"a blob schemathesis may fetch"
        cl.put_blob(blob)
        height = int(cl.status()["height"])
    fresh = [  # signed, never sent: schemathesis may admit them (next nonces)
        ll.transfer(u, nonce=2, to=USERS[0].account, asset=0, amount=1).raw.hex() for u in USERS
    ]
    return {
        "tx_ids": [t.hex() for t in ids],
        "accounts": [u.account.hex() for u in USERS],
        "heights": list(range(1, height + 1)),
        "blobs": [blake3.blake3(blob).hexdigest()],
        "txs": fresh,
    }


def _config(data: dict[str, list[str] | list[int]]) -> dict[str, object]:
    """schemathesis.toml: every check; 422 (well-formed, refused on content: a bad signature,
    a hash that is not the body's) counts as accepting schema-valid input, 400 never does."""
    half = 0.5
    bind = {
        "query.id": "tx_ids",
        "query.account": "accounts",
        "query.height": "heights",
        "query.start": "heights",
        "query.stop": "heights",
        "query.minHeight": "heights",
        "query.maxHeight": "heights",
        "path.hash": "blobs",
        "query.tx": "txs",
        "body.tx": "txs",
        "body.txs[*]": "txs",
    }
    return {
        "seed": 1,
        # A binding whose values stop fitting, or routes that only ever answer 404, mean the
        # run no longer reaches the handlers' logic: fail rather than pass vacuously.
        "warnings": {"fail-on": ["missing_test_data", "dictionary_mismatch"]},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"],
            },
        },
        "dictionaries": {name: {"values": values} for name, values in data.items()},
        "parameters": {k: {"dictionary": v, "probability": half} for k, v in bind.items()},
    }


def test_schemathesis_finds_nothing(spawn: Spawn, tmp_path: Path) -> None:
    datadir, genesis_file = make_datadir(tmp_path, "schema", key=True)
    node = spawn(datadir, "--genesis", str(genesis_file), "--block-interval", "0.05")
    config = tmp_path / "schemathesis.toml"
    config.write_text(tomli_w.dumps(_config(_chain_data(node))))
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
    cmd += [f"{node.url}/openapi.json", "--include-path-regex", "^/"]  # /openapi.json too
    cmd += ["--checks", "all", "--workers", "1"]
    cmd += ["--max-examples", str(MAX_EXAMPLES), "--generation-database", "none"]
    cmd += ["--request-timeout", "30", "--no-color"]
    done = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT_S, check=False
    )
    out = done.stdout + done.stderr
    (tmp_path / "schemathesis.log").write_text(out)
    assert done.returncode == 0, out[-8000:]
    tested = next(line for line in out.splitlines() if line.strip().startswith("Tested:"))
    n_ops = sum(len(ops) for ops in openapi()["paths"].values())
    assert tested.split() == ["Tested:", str(n_ops)], out[-4000:]
    assert node.stop() == 0, node.log()


def test_every_route_is_documented_and_every_documented_route_served(tmp_path: Path) -> None:
    led = ll.Ledger.create(tmp_path / "ledger", node_genesis(), workers=1)
    try:
        app = create_app(NodeService(led, NodeConfig(datadir=tmp_path), "observer"))
        served = {(path, m.lower()) for path, ms in app.state.routes.items() for m in ms}
    finally:
        led.close()
    documented = {(path, m) for path, ops in openapi()["paths"].items() for m in ops}
    assert served == documented


def test_every_error_status_is_documented_where_raised() -> None:
    """Each operation documents 400 once it takes a parameter or a body (a malformed one is
    refused), and each documented status has a response body schema."""
    for path, ops in openapi()["paths"].items():
        for method, op in ops.items():
            takes_input = op["parameters"] or "requestBody" in op
            assert ("400" in op["responses"]) == bool(takes_input), (method, path)
            for status, answer in op["responses"].items():
                assert answer.get("content"), (method, path, status)
