"""The OpenAPI 3.0 description of the node's HTTP API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

MAX_HEADERS = 1000
"""Most headers one ``/headers`` request returns."""

HEX32 = {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$"}
HEX = {"type": "string", "pattern": "^[0-9a-fA-F]*$"}
HEIGHT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
POSITION = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}
HOLDINGS = {"type": "object", "additionalProperties": {"type": "integer"}}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], required: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


ACK = (
    "An answer with code 0 is an acknowledgement, not inclusion: the transaction passed the "
    "stateless checks and is pending in the proposer's mempool, which the proposer records in "
    "a journal in its datadir before answering (so it survives a restart or kill of the "
    "proposer process, not a power loss). It may still fail when materialised, e.g. a transfer "
    "above the balance: poll /receipt?id=<hash> until it is in a block (404 until then) and "
    "read `applied`. A follower forwards to its proposer and answers 503 if it cannot."
)
BAD = _error("malformed parameter or body")
MISSING = _error("no such block, transaction, blob or height")

HEADER = _obj(
    ["height", "id", "raw"],
    height=HEIGHT,
    id=HEX32,
    chain_id={"type": "string"},
    parent=HEX32,
    shard_roots={"type": "array", "items": HEX32},
    shard_counts={"type": "array", "items": {"type": "integer"}},
    proposer=HEX32,
    signature=HEX,
    raw=HEX,
)
TX = _obj(
    ["id", "sender", "nonce", "op", "raw"],
    id=HEX32,
    sender=HEX32,
    nonce={"type": "integer"},
    op={"type": "string"},
    call={"type": "object"},
    raw=HEX,
    position=POSITION,
)
STATE = _obj(
    ["account", "height", "nonce", "balances"],
    account=HEX32,
    height=HEIGHT,
    nonce={"type": "integer"},
    balances=HOLDINGS,
    storage=HOLDINGS,
    proof=_obj(
        ["genesis_id", "headers", "txs"],
        genesis_id=HEX32,
        headers={"type": "array", "items": HEX},
        txs={
            "type": "array",
            "items": _obj(
                ["position", "tx", "path"],
                position=POSITION,
                tx=HEX,
                path={"type": "array", "items": HEX32},
            ),
        },
    ),
)

ACCOUNT = _query("account", HEX32, True, "account id (blake3 of the public key), hex")
AT_HEIGHT = _query("height", HEIGHT, False, "chain height (default: the head)")
TX_ID = _query("id", HEX32, True, "transaction id (blake3 of its canonical bytes), hex")
BLOB_HASH = {"name": "hash", "in": "path", "required": True, "schema": HEX32}


def _get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any], *errs: int) -> Any:
    responses: dict[str, Any] = {"200": ok}
    for code in errs:
        responses[str(code)] = {400: BAD, 404: MISSING, 403: _error("not available")}[code]
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


def openapi() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "lazyledger node",
            "version": "0.1.0",
            "description": "Blocks commit transaction inputs only; states are materialised on "
            "demand. Bytes are hex; errors are {error: {kind, message}}.",
        },
        "paths": {
            "/health": _get("liveness", [], _ok(_obj(["ok"], ok={"type": "boolean"}))),
            "/status": _get(
                "height, head hash, shards, mode, mempool, peers; catching_up is true while a "
                "follower has not reached its upstream's last known height",
                [],
                _ok(
                    _obj(
                        ["chain_id", "genesis_id", "height", "head", "n_shards", "mode", "peers"],
                        chain_id={"type": "string"},
                        genesis_id=HEX32,
                        height=HEIGHT,
                        head=HEX32,
                        n_shards={"type": "integer"},
                        mode={"type": "string", "enum": ["proposer", "follower", "observer"]},
                        mempool=_obj(
                            ["size", "capacity"],
                            size={"type": "integer"},
                            capacity={"type": "integer"},
                        ),
                        peers={"type": "array", "items": {"type": "string"}},
                        catching_up={"type": "boolean"},
                        upstream=_obj(
                            ["url", "reachable"],
                            url={"type": "string"},
                            reachable={"type": "boolean"},
                            height={"type": "integer", "nullable": True},
                            error={"type": "string", "nullable": True},
                        ),
                    )
                ),
            ),
            "/genesis": _get(
                "the genesis, canonical bytes",
                [],
                _ok(_obj(["genesis", "id"], genesis=HEX, id=HEX32)),
            ),
            "/broadcast_tx_sync": {
                "post": {
                    "summary": "stateless check (form, signature, nonce not used), then mempool",
                    "description": ACK,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _obj(["tx"], tx=HEX)}},
                    },
                    "responses": {
                        "200": _ok(
                            _obj(
                                ["hash", "code"],
                                hash=HEX32,
                                code={"type": "integer"},
                                log={"type": "string"},
                            )
                        ),
                        "400": _error("malformed body or invalid transaction"),
                        "403": _error("this node takes no transactions"),
                        "409": _error("another pending transaction has this nonce"),
                        "413": _error("body too large"),
                        "429": _error("mempool full; retry later"),
                        "503": _error("a follower cannot reach its proposer; retry later"),
                    },
                }
            },
            "/broadcast_txs": {
                "post": {
                    "summary": "up to 256 transactions, each checked and admitted on its own",
                    "description": ACK,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _obj(
                                    ["txs"],
                                    txs={
                                        "type": "array",
                                        "items": HEX,
                                        "minItems": 1,
                                        "maxItems": 256,
                                    },
                                )
                            }
                        },
                    },
                    "responses": {
                        "200": _ok(
                            _obj(
                                ["results"],
                                results={
                                    "type": "array",
                                    "items": _obj(
                                        ["code"],
                                        hash=HEX32,
                                        code={"type": "integer"},
                                        log={"type": "string"},
                                    ),
                                },
                            )
                        ),
                        "400": _error("malformed body"),
                        "403": _error("this node takes no transactions"),
                        "413": _error("body too large"),
                        "503": _error("a follower cannot reach its proposer; retry later"),
                    },
                }
            },
            "/nonce": _get(
                "nonce for the account's next transaction (committed, and after the mempool)",
                [ACCOUNT],
                _ok(
                    _obj(
                        ["account", "committed", "next"],
                        account=HEX32,
                        committed={"type": "integer"},
                        next={"type": "integer"},
                    )
                ),
                400,
            ),
            "/block": _get(
                "a block (JSON, or canonical bytes with encoding=raw)",
                [
                    _query("height", {**HEIGHT, "minimum": 1}, True, "block height"),
                    _query(
                        "encoding", {"type": "string", "enum": ["json", "raw"]}, False, "format"
                    ),
                ],
                {
                    "description": "the block",
                    "content": {
                        "application/json": {
                            "schema": _obj(
                                ["header", "sections"],
                                header=HEADER,
                                sections={
                                    "type": "array",
                                    "items": {"type": "array", "items": TX},
                                },
                            )
                        },
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                400,
                404,
            ),
            "/header": _get(
                "a block header",
                [_query("height", {**HEIGHT, "minimum": 1}, True, "block height")],
                _ok(HEADER),
                400,
                404,
            ),
            "/headers": _get(
                f"canonical header bytes of heights start..stop (at most {MAX_HEADERS})",
                [
                    _query("start", {**HEIGHT, "minimum": 1}, True, "first height"),
                    _query("stop", {**HEIGHT, "minimum": 1}, True, "last height"),
                ],
                _ok(_obj(["headers"], headers={"type": "array", "items": HEX})),
                400,
                404,
            ),
            "/tx": _get("a transaction and its position", [TX_ID], _ok(TX), 400, 404),
            "/state": _get(
                "lazily materialised state; with proof=1 the accountant answer (slice from "
                "genesis, Merkle proofs, headers) for lazyledger.client.verify_state",
                [
                    ACCOUNT,
                    AT_HEIGHT,
                    _query(
                        "proof",
                        {"type": "string", "enum": ["0", "1", "true", "false"]},
                        False,
                        "include the slice with inclusion proofs",
                    ),
                ],
                _ok(STATE),
                400,
                403,
                404,
            ),
            "/slice": _get(
                "positions (height, shard, index) replayed to materialise the account",
                [ACCOUNT, AT_HEIGHT],
                _ok(
                    _obj(
                        ["account", "height", "positions"],
                        account=HEX32,
                        height=HEIGHT,
                        positions={"type": "array", "items": POSITION},
                    )
                ),
                400,
                404,
            ),
            "/receipt": _get(
                "whether a transaction applied (materialised lazily)",
                [TX_ID],
                _ok(
                    _obj(
                        ["id", "applied", "reason", "position"],
                        id=HEX32,
                        applied={"type": "boolean"},
                        reason={"type": "string"},
                        position=POSITION,
                    )
                ),
                400,
                403,
                404,
            ),
            "/blob/{hash}": {
                "get": {
                    "summary": "a content-addressed blob",
                    "parameters": [BLOB_HASH],
                    "responses": {
                        "200": {
                            "description": "the blob",
                            "content": {
                                "application/octet-stream": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        },
                        "400": BAD,
                        "404": MISSING,
                    },
                },
                "put": {
                    "summary": "store a blob whose blake3 hash is the path",
                    "parameters": [
                        BLOB_HASH,
                        _query(
                            "kind",
                            {"type": "string"},
                            False,
                            "decode first: spec, dataset or weights:<spec hash>",
                        ),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok(
                            _obj(["hash", "size"], hash=HEX32, size={"type": "integer"}),
                            "stored",
                        ),
                        "400": _error("hash mismatch or malformed typed blob"),
                        "404": MISSING,
                        "413": _error("blob too large"),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": _obj(
                    ["error"],
                    error=_obj(
                        ["kind", "message"], kind={"type": "string"}, message={"type": "string"}
                    ),
                )
            }
        },
    }
