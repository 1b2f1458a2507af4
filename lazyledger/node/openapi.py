"""The OpenAPI 3.0 description of the node's HTTP API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

MAX_HEADERS = 1000
"""Most headers one ``/headers`` request returns."""
BLOCKCHAIN_LIMIT = 20
"""Most headers one ``/blockchain`` request returns (CometBFT's limit)."""
MAX_BATCH = 256
"""Transactions one ``/broadcast_txs`` request may carry."""

HEX32 = {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$"}
HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}
TX_HEX = {"type": "string", "pattern": "^(0x)?([0-9a-fA-F]{2})*$"}
HEIGHT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
BLOCK_HEIGHT = {**HEIGHT, "minimum": 1}
POSITION = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}
HOLDINGS = {"type": "object", "additionalProperties": {"type": "integer"}}
BINARY = {"type": "string", "format": "binary"}


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
ERRORS: dict[int, dict[str, Any]] = {
    400: _error("the request does not match this schema (a malformed parameter or body)"),
    403: _error("not available from this node"),
    404: _error("no such block, transaction, blob or height"),
    409: _error("another pending transaction has this nonce"),
    413: _error("body too large"),
    422: _error(
        "the request matches this schema but is refused on its content: an invalid "
        "transaction (signature, nonce, chain, asset...), parameters that contradict each "
        "other, a blob whose hash is not the one named or that is not of its kind"
    ),
    429: _error("mempool full; retry later"),
    503: _error("a follower cannot reach its proposer; retry later"),
}
HEADER = _obj(
    ["height", "id", "raw"],
    height=HEIGHT,
    time_ms={"type": "integer", "minimum": 0},
    id=HEX32,
    chain_id={"type": "string"},
    parent=HEX32,
    touch_root=HEX32,
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
PROOF = _obj(
    ["genesis_id", "headers", "txs", "touches"],
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
    touches={
        "type": "array",
        "items": _obj(
            ["account", "proof"],
            account=HEX32,
            proof={
                "type": "string",
                "description": "base64 of count:u64 | r:u8 | r x hash:32 | b:u16 | "
                "b x (account:32 count:u64 root:32) | 20 x hash:32 (lazyledger.touches)",
            },
        ),
    },
)
STATE = _obj(
    ["account", "height", "nonce", "balances"],
    account=HEX32,
    height=HEIGHT,
    nonce={"type": "integer"},
    balances=HOLDINGS,
    storage=HOLDINGS,
    proof=PROOF,
)

_INT = {"type": "integer"}
STORAGE = {
    "type": "object",
    "description": "by LMDB environment directory: map size, bytes in use, free pages "
    "(LMDB's freelist: pages below the high-water mark no table holds) and per-table entries, "
    "pages and page bytes",
    "additionalProperties": _obj(
        ["kind", "map_size", "used_bytes", "page_size", "free_pages", "tables"],
        kind={"type": "string", "enum": ["meta", "shard", "cache", "blobs"]},
        map_size=_INT,
        used_bytes=_INT,
        page_size=_INT,
        free_pages=_INT,
        tables={
            "type": "object",
            "additionalProperties": _obj(
                ["entries", "pages", "bytes"], entries=_INT, pages=_INT, bytes=_INT
            ),
        },
    ),
}
NODE_STATUS = _obj(
    ["chain_id", "genesis_id", "height", "head", "n_shards", "mode", "peers", "catching_up"],
    chain_id={"type": "string"},
    genesis_id=HEX32,
    height=HEIGHT,
    head=HEX32,
    n_shards={"type": "integer"},
    mode={"type": "string", "enum": ["proposer", "follower", "observer"]},
    mempool=_obj(["size", "capacity"], size={"type": "integer"}, capacity={"type": "integer"}),
    peers={"type": "array", "items": {"type": "string"}},
    catching_up={"type": "boolean"},
    storage=STORAGE,
    upstream=_obj(
        ["url", "reachable"],
        url={"type": "string"},
        reachable={"type": "boolean"},
        height={"type": "integer", "nullable": True},
        error={"type": "string", "nullable": True},
    ),
)
NET_INFO = _obj(
    ["listening", "listeners", "n_peers", "peers"],
    listening={"type": "boolean"},
    listeners={"type": "array", "items": {"type": "string"}},
    n_peers={"type": "integer"},
    peers={
        "type": "array",
        "items": _obj(
            ["url", "role"],
            url={"type": "string"},
            role={"type": "string", "enum": ["upstream", "follower"]},
            remote_ip={"type": "string", "nullable": True},
            last_seen_s={"type": "number", "nullable": True},
            height={"type": "integer", "nullable": True},
        ),
    },
)
VALIDATORS = _obj(
    ["block_height", "validators", "count", "total"],
    block_height=HEIGHT,
    validators={
        "type": "array",
        "items": _obj(
            ["address", "pub_key", "voting_power"],
            address=HEX32,
            pub_key=HEX32,
            voting_power={"type": "integer"},
        ),
    },
    count={"type": "integer"},
    total={"type": "integer"},
)
BLOB_KIND = "^(spec|dataset|weights:[0-9a-fA-F]{64})$"
TX_ANSWER = _ok(
    _obj(["hash", "code"], hash=HEX32, code={"type": "integer"}, log={"type": "string"})
)
TX_LINKS = {
    "GetTransaction": {"operationId": "tx", "parameters": {"id": "$response.body#/hash"}},
    "GetReceipt": {"operationId": "receipt", "parameters": {"id": "$response.body#/hash"}},
}
ACCOUNT = _query("account", HEX32, True, "account id (blake3 of the public key), hex")
AT_HEIGHT = _query("height", HEIGHT, False, "chain height (default: the head)")
TX_ID = _query("id", HEX32, True, "transaction id (blake3 of its canonical bytes), hex")
BLOB_HASH = {"name": "hash", "in": "path", "required": True, "schema": HEX32}
BLOCK = _obj(
    ["header", "sections"],
    header=HEADER,
    sections={"type": "array", "items": {"type": "array", "items": TX}},
)


def _op(
    op_id: str,
    summary: str,
    params: list[dict[str, Any]],
    ok: dict[str, Any],
    *errs: int,
    ok_status: int = 200,
    **extra: Any,
) -> dict[str, Any]:
    """One operation: its success answer and the documented error statuses."""
    responses: dict[str, Any] = {str(ok_status): ok}
    responses.update({str(code): ERRORS[code] for code in errs})
    return {
        "operationId": op_id,
        "summary": summary,
        "parameters": params,
        "responses": responses,
        **extra,
    }


def _get(
    op_id: str, summary: str, params: list[dict[str, Any]], ok: dict[str, Any], *errs: int
) -> Any:
    return {"get": _op(op_id, summary, params, ok, *errs)}


def openapi() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "lazyledger node",
            "version": "0.1.0",
            "description": "Blocks commit transaction inputs only; states are materialised on "
            "demand. Bytes are hex (an optional 0x prefix in requests); errors are "
            "{error: {kind, message}}: 400 when a request does not match this schema, 422 when "
            "it matches but is refused on its content. Routes in the style of CometBFT's RPC "
            "(/status, /net_info, /validators, /broadcast_tx_sync, /num_unconfirmed_txs, "
            "/block, /blockchain, /tx).",
        },
        "paths": {
            "/health": _get("health", "liveness", [], _ok(_obj(["ok"], ok={"type": "boolean"}))),
            "/status": _get(
                "status",
                "height, head hash, shards, mode, mempool, peers (a follower's upstream, and "
                "the followers that fetched from this node recently); catching_up is true while "
                "a follower has not reached its upstream's last known height; storage: map "
                "size, map use, free pages and per-table sizes of each LMDB environment",
                [],
                {
                    **_ok(NODE_STATUS),
                    "links": {
                        "HeadBlock": {
                            "operationId": "block",
                            "parameters": {"height": "$response.body#/height"},
                        }
                    },
                },
            ),
            "/net_info": _get(
                "net_info",
                "this node's listener and its peers: its upstream (a follower) and the "
                "followers that fetched from it in the last 30 s (as they name themselves)",
                [],
                _ok(NET_INFO),
            ),
            "/validators": _get(
                "validators",
                "the authorities that may propose blocks (from genesis), each with power 1",
                [AT_HEIGHT],
                _ok(VALIDATORS),
                400,
                404,
            ),
            "/genesis": _get(
                "genesis",
                "the genesis, canonical bytes",
                [],
                _ok(_obj(["genesis", "id"], genesis=HEX, id=HEX32)),
            ),
            "/broadcast_tx_sync": {
                "get": _op(
                    "broadcast_tx_sync_uri",
                    "CometBFT's URI form of the POST: tx=0x<hex canonical bytes>",
                    [_query("tx", TX_HEX, True, "canonical transaction bytes, hex")],
                    {**TX_ANSWER, "links": TX_LINKS},
                    400,
                    403,
                    409,
                    413,
                    422,
                    429,
                    503,
                    description=ACK,
                ),
                "post": _op(
                    "broadcast_tx_sync",
                    "stateless check (form, signature, nonce not used), then mempool",
                    [],
                    {**TX_ANSWER, "links": TX_LINKS},
                    400,
                    403,
                    409,
                    413,
                    422,
                    429,
                    503,
                    description=ACK,
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": _obj(["tx"], tx=TX_HEX)}},
                    },
                ),
            },
            "/broadcast_txs": {
                "post": _op(
                    "broadcast_txs",
                    f"up to {MAX_BATCH} transactions, each checked and admitted on its own "
                    "(code: 0, or the status it would have had alone)",
                    [],
                    _ok(
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
                    400,
                    403,
                    413,
                    503,
                    description=ACK,
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _obj(
                                    ["txs"],
                                    txs={
                                        "type": "array",
                                        "items": TX_HEX,
                                        "minItems": 1,
                                        "maxItems": MAX_BATCH,
                                    },
                                )
                            }
                        },
                    },
                )
            },
            "/num_unconfirmed_txs": _get(
                "num_unconfirmed_txs",
                "pending transactions in this node's mempool (a follower forwards its own)",
                [],
                _ok(
                    _obj(
                        ["n_txs", "total", "total_bytes"],
                        n_txs={"type": "integer"},
                        total={"type": "integer"},
                        total_bytes={"type": "integer"},
                    )
                ),
            ),
            "/nonce": _get(
                "nonce",
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
            "/block": {
                "get": _op(
                    "block",
                    "a block (JSON, or canonical bytes with encoding=raw); the head block "
                    "without a height",
                    [
                        _query("height", BLOCK_HEIGHT, False, "block height (default: the head)"),
                        _query(
                            "encoding", {"type": "string", "enum": ["json", "raw"]}, False, "format"
                        ),
                    ],
                    {
                        "description": "the block",
                        "content": {
                            "application/json": {"schema": BLOCK},
                            "application/octet-stream": {"schema": BINARY},
                        },
                    },
                    400,
                    404,
                )
            },
            "/block_blobs": _get(
                "block_blobs",
                "the hashes of the blobs a block's transactions reference (fetch each with "
                "/blob/{hash}): a block is valid only where its blobs are held, so a follower "
                "fetches them with the block; the head block's without a height",
                [_query("height", BLOCK_HEIGHT, False, "block height (default: the head)")],
                _ok(
                    _obj(
                        ["height", "blobs"],
                        height=BLOCK_HEIGHT,
                        blobs={"type": "array", "items": HEX32},
                    )
                ),
                400,
                404,
            ),
            "/header": _get(
                "header",
                "a block header; the head's without a height",
                [_query("height", BLOCK_HEIGHT, False, "block height (default: the head)")],
                _ok(HEADER),
                400,
                404,
            ),
            "/headers": _get(
                "headers",
                f"canonical header bytes of heights start..stop (at most {MAX_HEADERS}), oldest "
                "first",
                [
                    _query("start", BLOCK_HEIGHT, True, "first height"),
                    _query("stop", BLOCK_HEIGHT, True, "last height"),
                ],
                _ok(_obj(["headers"], headers={"type": "array", "items": HEX})),
                400,
                404,
                422,
            ),
            "/blockchain": _get(
                "blockchain",
                f"CometBFT's /blockchain: headers of minHeight..maxHeight (clamped to the head), "
                f"newest first, at most {BLOCKCHAIN_LIMIT} (the newest of a longer range)",
                [
                    _query("minHeight", BLOCK_HEIGHT, False, "lowest height (default 1)"),
                    _query("maxHeight", BLOCK_HEIGHT, False, "highest height (default: the head)"),
                ],
                _ok(
                    _obj(
                        ["last_height", "block_metas"],
                        last_height=HEIGHT,
                        block_metas={
                            "type": "array",
                            "maxItems": BLOCKCHAIN_LIMIT,
                            "items": _obj(
                                ["block_id", "num_txs", "header"],
                                block_id=HEX32,
                                num_txs={"type": "integer"},
                                header=HEADER,
                            ),
                        },
                    )
                ),
                400,
                404,
                422,
            ),
            "/tx": _get("tx", "a transaction and its position", [TX_ID], _ok(TX), 400, 404),
            "/state": _get(
                "state",
                "lazily materialised state; with proof=1 the accountant answer (slice from "
                "genesis, Merkle proofs, headers, touch proofs) for "
                "lazyledger.LightClient.verify_state",
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
                "slice",
                "positions (height, shard, index) replayed to materialise the account; with "
                "proof=1 the slice from genesis with its proofs (LightClient.verify_slice)",
                [
                    ACCOUNT,
                    AT_HEIGHT,
                    _query(
                        "proof",
                        {"type": "string", "enum": ["0", "1", "true", "false"]},
                        False,
                        "the complete slice from genesis, with its proofs",
                    ),
                ],
                _ok(
                    _obj(
                        ["account", "height", "positions"],
                        account=HEX32,
                        height=HEIGHT,
                        positions={"type": "array", "items": POSITION},
                        proof=PROOF,
                    )
                ),
                400,
                403,
                404,
            ),
            "/receipt": _get(
                "receipt",
                "whether a transaction applied (materialised lazily); 404 until it is in a block",
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
                "get": _op(
                    "get_blob",
                    "a content-addressed blob",
                    [BLOB_HASH],
                    {
                        "description": "the blob",
                        "content": {"application/octet-stream": {"schema": BINARY}},
                    },
                    400,
                    404,
                ),
                "put": _op(
                    "put_blob",
                    "store a blob whose blake3 hash is the path",
                    [
                        BLOB_HASH,
                        _query(
                            "kind",
                            {"type": "string", "pattern": BLOB_KIND},
                            False,
                            "decode first: spec, dataset or weights:<spec hash>",
                        ),
                    ],
                    {
                        **_ok(
                            _obj(["hash", "size"], hash=HEX32, size={"type": "integer"}), "stored"
                        ),
                        "links": {
                            "GetBlob": {
                                "operationId": "get_blob",
                                "parameters": {"hash": "$response.body#/hash"},
                            }
                        },
                    },
                    400,
                    404,
                    413,
                    422,
                    503,
                    ok_status=201,
                    requestBody={
                        "required": True,
                        "content": {"application/octet-stream": {"schema": BINARY}},
                    },
                ),
            },
            "/metrics": {
                "get": _op(
                    "metrics",
                    "Prometheus metrics",
                    [],
                    {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                )
            },
            "/openapi.json": _get("openapi", "this document", [], _ok({"type": "object"})),
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
