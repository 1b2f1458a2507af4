"""Schemathesis against the node's OpenAPI schema (in-process, bounded examples): no input it
generates may cause a 5xx, and responses must match the documented schemas and statuses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from nodehelp import PROPOSER, USERS, node_genesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import lazyledger as ll
from lazyledger.node.app import create_app
from lazyledger.node.config import NodeConfig
from lazyledger.node.producer import AuthorityProducer
from lazyledger.node.service import NodeService

_DIR = Path(tempfile.mkdtemp(prefix="lazyledger-schema-"))


def _ledger() -> ll.Ledger:
    led = ll.Ledger.create(_DIR / "ledger", node_genesis(), workers=1)
    for n in range(3):  # a few blocks so heights, ids and slices exist
        txs = [
            ll.transfer(u, nonce=n, to=USERS[(i + 1) % 6].account, asset=0, amount=3 + i)
            for i, u in enumerate(USERS)
        ]
        led.append(led.propose(txs, PROPOSER))
    return led


_SERVICE = NodeService(_ledger(), NodeConfig(datadir=_DIR, block_interval=0.05), "proposer")
APP = create_app(_SERVICE, AuthorityProducer(PROPOSER), close_ledger=False)  # one per request
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _SERVICE.ledger.close()
    shutil.rmtree(_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
