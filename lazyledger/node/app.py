"""The node's HTTP API (Starlette): JSON, hex for bytes, routes in the style of CometBFT's RPC.
Every blocking ledger call runs in a worker thread; every bad input is a 4xx with a message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
import attrs
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lazyledger.crypto import account_of
from lazyledger.errors import (
    HeightOutOfRange,
    InvalidBlock,
    InvalidGenesis,
    InvalidTransaction,
    LedgerError,
    NotFound,
    PrivateStateUnavailable,
)
from lazyledger.materialize.dnn import InvalidBlob, InvalidModel
from lazyledger.materialize.host import blob_hash
from lazyledger.model import Transaction
from lazyledger.node.follower import follow
from lazyledger.node.mempool import MempoolFull, NonceConflict
from lazyledger.node.openapi import BLOCKCHAIN_LIMIT, MAX_BATCH, MAX_HEADERS, openapi
from lazyledger.node.peers import HEIGHT_HEADER, PEER_HEADER
from lazyledger.node.producer import BlockProducer, produce
from lazyledger.node.query import ForwardQueries, QueryPool, merge_metrics
from lazyledger.node.service import NodeService

log = logging.getLogger("lazyledger.node.http")
T = TypeVar("T")


class BadRequest(LedgerError):
    """A request does not match the API's schema: a parameter or the body is malformed (400)."""


class Unprocessable(LedgerError):
    """A well-formed request refused on its content (422): its parameters contradict each
    other, or a body is not what it must be (a blob whose hash is not the one named)."""


class TooLarge(LedgerError):
    """A request body is over the node's limit (HTTP 413)."""


class NotAccepting(LedgerError):
    """This node takes no transactions (an observer: neither proposer nor follower)."""


class UpstreamUnavailable(LedgerError):
    """A follower could not forward a request to its proposer (HTTP 503); retry later."""

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream, self.reason = upstream, reason
        super().__init__(
            f"the proposer at {upstream} is unreachable ({reason}); nothing was forwarded, "
            "retry later"
        )


class ClientGone(LedgerError):
    """The client closed the connection before its request body arrived in full."""


MAX_INT = 2**63 - 1
"""Largest integer a query parameter may hold (heights are below it)."""

STATUS: list[tuple[type[Exception], int]] = [
    (BadRequest, 400),
    (Unprocessable, 422),
    (TooLarge, 413),
    (MempoolFull, 429),
    (NonceConflict, 409),
    (NotAccepting, 403),
    (UpstreamUnavailable, 503),
    (HeightOutOfRange, 404),
    (NotFound, 404),
    (PrivateStateUnavailable, 403),
    (InvalidTransaction, 422),
    (InvalidBlock, 422),
    (InvalidGenesis, 422),
    (InvalidBlob, 422),
    (InvalidModel, 422),
    (ValueError, 400),
]
"""HTTP status of each error a handler lets escape, first match wins. 400 means the request
does not match /openapi.json; a request that matches it but is refused on its content (a bad
signature, a used nonce, a malformed typed blob) gets 422."""


def error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"kind": kind, "message": message, **extra}}, status)


def _ledger_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientGone):  # nobody reads the answer: one log line, no traceback
        log.info("client disconnected mid-request", extra={"path": request.url.path})
        return Response(status_code=400)
    for kind, status in STATUS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, PrivateStateUnavailable):
                extra = {
                    "blocking": [b.hex() for b in exc.blocking],
                    "last_known_height": exc.last_known_height,
                }
            return error(status, type(exc).__name__, str(exc), **extra)
    log.error("unexpected ledger error", extra={"reason": str(exc), "path": request.url.path})
    return error(503, type(exc).__name__, str(exc))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    return JSONResponse(
        {"error": {"kind": "HTTPError", "message": exc.detail}}, exc.status_code, headers=headers
    )


def _crash(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error(500, "InternalError", "internal error; see the node's log")


# -- parameters ------------------------------------------------------------------------------

_HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2})*)")
_DIGITS = re.compile(r"[0-9]{1,19}")
_BLOB_KIND = re.compile(r"spec|dataset|weights:[0-9a-fA-F]{64}")


def _param(request: Request, name: str, required: bool = True) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"parameter {name!r} given {len(values)} times")
    if not values:
        if required:
            raise BadRequest(f"missing parameter {name!r}")
        return None
    return values[0]


def _bytes(value: str, what: str, size: int | None = None) -> bytes:
    """Hex (even length, an optional ``0x``; nothing else, not even whitespace) as bytes."""
    found = _HEX.fullmatch(value)
    if found is None:
        raise BadRequest(f"{what} is not hex (pairs of 0-9a-f, optional 0x)")
    raw = bytes.fromhex(found.group(1))
    if size is not None and len(raw) != size:
        raise BadRequest(f"{what} must be {size} bytes ({2 * size} hex digits), got {len(raw)}")
    return raw


def _hex32(request: Request, name: str) -> bytes:
    return _bytes(_param(request, name) or "", f"parameter {name!r}", 32)


def _int(request: Request, name: str, required: bool = False) -> int | None:
    value = _param(request, name, required)
    if value is None:
        return None
    if _DIGITS.fullmatch(value) is None or int(value) > MAX_INT:
        raise BadRequest(f"parameter {name!r} must be an integer in 0..{MAX_INT}, got {value!r}")
    return int(value)


def _height(request: Request, name: str = "height", required: bool = False) -> int | None:
    """A block height parameter (1..): 0 names the genesis, which holds no block."""
    h = _int(request, name, required)
    if h == 0:
        raise NotFound("block", 0)  # genesis holds no transactions: see /genesis
    return h


def _flag(request: Request, name: str) -> bool:
    value = _param(request, name, False)
    if value is None:
        return False
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise BadRequest(f"parameter {name!r} must be one of 0, 1, true, false, got {value!r}")


def _choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    value = _param(request, name, False)
    if value is None:
        return choices[0]
    if value not in choices:
        raise BadRequest(f"parameter {name!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone(f"client disconnected after {size} bytes of the body") from None
    return b"".join(chunks)


async def _json_body(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    try:
        return _json(body) if body else None  # at most ``limit`` bytes: parse inline
    except ValueError as e:
        raise BadRequest(f"body is not valid JSON ({e})") from None


def _position(p: tuple[int, int, int]) -> list[int]:
    return [p[0], p[1], p[2]]


def _tx_json(tx: Transaction) -> dict[str, Any]:
    call = {
        k: (v.hex() if isinstance(v, bytes) else v)
        for k, v in ((f.name, getattr(tx.call, f.name)) for f in attrs.fields(type(tx.call)))  # type: ignore[arg-type]
        if isinstance(v, bytes | int | str)
    }
    return {
        "id": tx.id.hex(),
        "sender": tx.sender.hex(),
        "nonce": tx.nonce,
        "op": type(tx.call).__name__.lower(),
        "call": call,
        "raw": tx.raw.hex(),
    }


# -- the application -------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


class RequestMetrics:
    """ASGI middleware: a latency histogram by route and status class; and a note of each
    follower that names itself in a request (:mod:`lazyledger.node.peers`)."""

    def __init__(self, app: ASGIApp, service: NodeService, routes: frozenset[str]) -> None:
        self.app, self.service, self.routes = app, service, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        peer = height = None
        for name, value in scope["headers"]:
            if name == PEER_HEADER_B:
                peer = value.decode("latin-1")
            elif name == HEIGHT_HEADER_B:
                height = value.decode("latin-1")
        if peer is not None:
            client = scope.get("client")
            self.service.peers.saw(peer, client[0] if client else "", height)

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"]
            route = path if path in self.routes else "/blob" if path.startswith("/blob/") else "-"
            self.service.metrics.requests.labels(route, f"{status[0] // 100}xx").observe(
                time.perf_counter() - t0
            )


PEER_HEADER_B = PEER_HEADER.encode()
HEIGHT_HEADER_B = HEIGHT_HEADER.encode()


def _by_method(handlers: dict[str, Handler]) -> Handler:
    """One endpoint for a path served by several methods (so that a 405 lists them all)."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def create_app(
    service: NodeService,
    producer: BlockProducer | None = None,
    *,
    close_ledger: bool = True,
    queries: QueryPool | None = None,
) -> Starlette:
    """The ASGI app of a node. Its lifespan runs the block producer (proposer mode) or the
    sync loop (``service.upstream`` set), and on shutdown stops them, lets an open block write
    finish, and closes the ledger. With ``queries``, the query routes are answered by worker
    processes (:mod:`lazyledger.node.query`) that the lifespan starts and stops."""
    cfg = service.config
    led = service.ledger
    stop = asyncio.Event()
    wake = asyncio.Event()
    forward: list[httpx.AsyncClient] = []

    async def run(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def status(request: Request) -> Response:
        return JSONResponse(service.status())

    async def genesis(request: Request) -> Response:
        return JSONResponse({"genesis": led.genesis.to_bytes().hex(), "id": led.genesis_id.hex()})

    async def _forward(path: str, doc: dict[str, Any]) -> httpx.Response:
        """POST ``doc`` to the upstream proposer; UpstreamUnavailable (503) if it cannot."""
        try:
            return await forward[0].post(path, json=doc)
        except httpx.HTTPError as e:
            reason = str(e) or type(e).__name__
            log.warning(
                "upstream unavailable", extra={"upstream": service.upstream, "reason": reason}
            )
            raise UpstreamUnavailable(str(service.upstream), reason) from None

    async def _admit(raw: bytes) -> Response:
        if forward:
            await run(service.check, raw)  # refuse what is plainly bad before forwarding
            r = await _forward("/broadcast_tx_sync", {"tx": raw.hex()})
            return Response(r.content, r.status_code, media_type="application/json")
        if producer is None:
            raise NotAccepting("this node neither proposes nor follows: it takes no transactions")
        tx, added = await run(service.submit, raw)
        if len(service.mempool) >= cfg.max_block_txs:
            wake.set()
        return JSONResponse(
            {"hash": tx.id.hex(), "code": 0, "log": "added" if added else "already known"}
        )

    async def broadcast(request: Request) -> Response:
        doc = await _json_body(request, cfg.max_body_bytes)
        if not isinstance(doc, dict) or not isinstance(doc.get("tx"), str):
            raise BadRequest('body must be a JSON object {"tx": "<hex canonical bytes>"}')
        return await _admit(_bytes(doc["tx"], "tx"))

    async def broadcast_get(request: Request) -> Response:
        """CometBFT's URI form: ``GET /broadcast_tx_sync?tx=0x<hex>``."""
        value = _param(request, "tx") or ""
        if len(value) > 2 * cfg.max_body_bytes:
            raise TooLarge(
                f"tx of {len(value) // 2} bytes exceeds the limit of {cfg.max_body_bytes}"
            )
        return await _admit(_bytes(value, "parameter 'tx'"))

    async def broadcast_many(request: Request) -> Response:
        """Up to MAX_BATCH transactions in one request: each is admitted or refused on its own
        (``code`` is the HTTP status it would have had alone), in order."""
        doc = await _json_body(request, cfg.max_body_bytes)
        txs = doc.get("txs") if isinstance(doc, dict) else None
        if not isinstance(txs, list) or not all(isinstance(t, str) for t in txs):
            raise BadRequest('body must be a JSON object {"txs": ["<hex canonical bytes>", ...]}')
        if not 1 <= len(txs) <= MAX_BATCH:
            raise BadRequest(f"a batch holds 1..{MAX_BATCH} transactions, got {len(txs)}")
        raws = [_bytes(t, f"txs[{i}]") for i, t in enumerate(txs)]
        if forward:
            r = await _forward("/broadcast_txs", {"txs": [x.hex() for x in raws]})
            return Response(r.content, r.status_code, media_type="application/json")
        if producer is None:
            raise NotAccepting("this node neither proposes nor follows: it takes no transactions")
        results = await run(_submit_all, raws)
        if len(service.mempool) >= cfg.max_block_txs:
            wake.set()
        return JSONResponse({"results": results})

    def _submit_all(raws: list[bytes]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for raw in raws:
            try:
                tx, added = service.submit(raw)
            except LedgerError as e:
                code = next((s for kind, s in STATUS if isinstance(e, kind)), 422)
                out.append({"code": code, "log": str(e)})
                continue
            out.append(
                {"hash": tx.id.hex(), "code": 0, "log": "added" if added else "already known"}
            )
        return out

    async def nonce(request: Request) -> Response:
        account = _hex32(request, "account")
        committed, nxt = await run(service.next_nonce, account)
        if forward:  # the upstream's mempool decides the next nonce
            try:
                r = await forward[0].get("/nonce", params={"account": account.hex()})
                r.raise_for_status()
                nxt = max(nxt, int(r.json()["next"]))
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                log.warning("upstream nonce unavailable", extra={"account": account.hex()})
        return JSONResponse({"account": account.hex(), "committed": committed, "next": nxt})

    def _latest(height: int | None) -> int:
        """``height``, or the head when it is None; NotFound while the chain has no block."""
        h = led.height if height is None else height
        if h == 0:
            raise NotFound("block", "yet: the chain holds only its genesis (see /genesis)")
        return h

    async def block(request: Request) -> Response:
        height = _height(request)
        encoding = _choice(request, "encoding", ("json", "raw"))
        blk = await run(led.block, _latest(height))
        if encoding == "raw":
            return Response(blk.to_bytes(), media_type="application/octet-stream")
        return JSONResponse(
            {
                "header": _header_json(blk.header),
                "sections": [[_tx_json(tx) for tx in sec] for sec in blk.sections],
            }
        )

    async def block_blobs(request: Request) -> Response:
        """The blobs a block's transactions reference: what a follower fetches (``/blob``)
        with the block, since a block whose blobs a validator does not hold is invalid."""
        h = _latest(_height(request))
        found = await run(led.block_blobs, h)
        return JSONResponse({"height": h, "blobs": [b.hex() for b in found]})

    async def header(request: Request) -> Response:
        height = _height(request)
        return JSONResponse(_header_json(await run(led.header, _latest(height))))

    async def headers(request: Request) -> Response:
        start = _height(request, "start", required=True)
        stop_ = _height(request, "stop", required=True)
        assert start is not None and stop_ is not None
        if not start <= stop_ or stop_ - start >= MAX_HEADERS:
            raise Unprocessable(
                f"need start <= stop and at most {MAX_HEADERS} headers, got {start}..{stop_}"
            )
        if stop_ > led.height:
            raise HeightOutOfRange(stop_, led.height)

        def get() -> list[str]:
            return [led.header(h).to_bytes().hex() for h in range(start, stop_ + 1)]

        return JSONResponse({"headers": await run(get)})

    async def blockchain(request: Request) -> Response:
        """CometBFT's ``/blockchain``: the headers of minHeight..maxHeight, newest first, at
        most BLOCKCHAIN_LIMIT (the newest ones of a longer range)."""
        lo = _height(request, "minHeight") or 1
        given_hi = _height(request, "maxHeight")
        if given_hi is not None and lo > given_hi:
            raise Unprocessable(f"minHeight {lo} is above maxHeight {given_hi}")
        head = led.height
        hi = head if given_hi is None else min(given_hi, head)
        lo = max(lo, hi - BLOCKCHAIN_LIMIT + 1)

        def get() -> list[dict[str, Any]]:
            out = []
            for h in range(hi, lo - 1, -1):
                hd = led.header(h)
                out.append(
                    {
                        "block_id": hd.id.hex(),
                        "num_txs": sum(hd.shard_counts),
                        "header": _header_json(hd),
                    }
                )
            return out

        return JSONResponse({"last_height": head, "block_metas": await run(get)})

    async def tx(request: Request) -> Response:
        tx_id = _hex32(request, "id")

        def get() -> dict[str, Any]:
            pos = led.position(tx_id)
            return {"position": _position(pos), **_tx_json(led.transaction(tx_id))}

        return JSONResponse(await run(get))

    async def state(request: Request) -> Response:
        account = _hex32(request, "account")
        height = _int(request, "height")
        proof = _flag(request, "proof")
        if height is not None and height > led.height:
            raise HeightOutOfRange(height, led.height)
        if proof:
            return JSONResponse(await run(service.prove, account, height))
        h, st = await run(service.state, account, height)
        return JSONResponse(
            {
                "account": account.hex(),
                "height": h,
                "nonce": st.nonce,
                "balances": {str(a): v for a, v in sorted(st.balances.items())},
                "storage": {str(a): v for a, v in sorted(st.storage.items())},
            }
        )

    async def slice_(request: Request) -> Response:
        account = _hex32(request, "account")
        height = _int(request, "height")
        if height is not None and height > led.height:
            raise HeightOutOfRange(height, led.height)
        if _flag(request, "proof"):
            return JSONResponse(await run(service.prove_slice, account, height))
        h, positions = await run(service.slice, account, height)
        return JSONResponse(
            {"account": account.hex(), "height": h, "positions": [_position(p) for p in positions]}
        )

    async def receipt(request: Request) -> Response:
        tx_id = _hex32(request, "id")
        r = await run(service.receipt, tx_id)
        return JSONResponse(
            {"id": tx_id.hex(), "applied": r.applied, "reason": r.reason, "position": r.position}
        )

    async def net_info(request: Request) -> Response:
        return JSONResponse(service.net_info())

    async def validators(request: Request) -> Response:
        """CometBFT's ``/validators``: here the genesis authorities, each with power 1."""
        h = _int(request, "height")
        if h is not None and h > led.height:
            raise HeightOutOfRange(h, led.height)
        vals = [
            {"address": account_of(k).hex(), "pub_key": k.hex(), "voting_power": 1}
            for k in led.genesis.authorities
        ]
        return JSONResponse(
            {
                "block_height": led.height if h is None else h,
                "validators": vals,
                "count": len(vals),
                "total": len(vals),
            }
        )

    async def num_unconfirmed_txs(request: Request) -> Response:
        pool = service.mempool
        return JSONResponse({"n_txs": len(pool), "total": len(pool), "total_bytes": pool.nbytes})

    def _blob_key(request: Request) -> bytes:
        return _bytes(request.path_params["hash"], "blob hash", 32)

    async def blob_get(request: Request) -> Response:
        key = _blob_key(request)
        return Response(await run(led.get_blob, key), media_type="application/octet-stream")

    async def blob_put(request: Request) -> Response:
        key = _blob_key(request)
        kind = _param(request, "kind", False)
        if kind is not None and _BLOB_KIND.fullmatch(kind) is None:
            raise BadRequest(f"unknown blob kind {kind!r} (spec, dataset, weights:<spec hash>)")
        data = await read_body(request, cfg.max_blob_bytes)
        if blob_hash(data) != key:
            raise Unprocessable("the body's blake3 hash is not the hash in the path")
        try:
            await run(led.put_blob, data, kind)
        except LedgerError:
            raise
        except ValueError as e:  # a malformed typed blob (spec, dataset, weights)
            raise Unprocessable(f"blob refused: {e}") from None
        if forward:  # the proposer must hold it too before it takes a transaction naming it
            try:
                params = {} if kind is None else {"kind": kind}
                r = await forward[0].put(f"/blob/{key.hex()}", content=data, params=params)
            except httpx.HTTPError as e:
                reason = str(e) or type(e).__name__
                raise UpstreamUnavailable(str(service.upstream), reason) from None
            if r.status_code != 201:
                return Response(r.content, r.status_code, media_type="application/json")
        return JSONResponse({"hash": key.hex(), "size": len(data)}, 201)

    async def metrics(request: Request) -> Response:
        body = await run(service.metrics.render)
        if queries is not None:
            parts = [("owner", body), *await queries.scrape()]
            body = await run(merge_metrics, parts)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def schema(request: Request) -> Response:
        return JSONResponse(openapi())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if service.upstream:
            forward.append(
                httpx.AsyncClient(
                    base_url=service.upstream, timeout=30.0, headers={PEER_HEADER: cfg.url}
                )
            )
            tasks.append(asyncio.create_task(follow(service, service.upstream, stop)))
        elif producer is not None:
            tasks.append(asyncio.create_task(produce(service, producer, stop, wake)))
        if queries is not None:
            try:
                await queries.start()
            except BaseException:
                await queries.stop()
                raise
        log.info("node started", extra={"mode": service.mode, "height": led.height})
        try:
            yield
        finally:
            if queries is not None:
                await queries.stop()
            stop.set()
            wake.set()
            for t in tasks:
                await t  # the loops see ``stop``; a block being written finishes first
            for client in forward:
                await client.aclose()
            service.close()
            if close_ledger:
                led.close()
            log.info("node stopped", extra={"height": led.height})

    table: dict[str, dict[str, Handler]] = {
        "/health": {"GET": health},
        "/status": {"GET": status},
        "/net_info": {"GET": net_info},
        "/validators": {"GET": validators},
        "/genesis": {"GET": genesis},
        "/broadcast_tx_sync": {"GET": broadcast_get, "POST": broadcast},
        "/broadcast_txs": {"POST": broadcast_many},
        "/num_unconfirmed_txs": {"GET": num_unconfirmed_txs},
        "/nonce": {"GET": nonce},
        "/block": {"GET": block},
        "/block_blobs": {"GET": block_blobs},
        "/header": {"GET": header},
        "/headers": {"GET": headers},
        "/blockchain": {"GET": blockchain},
        "/tx": {"GET": tx},
        "/state": {"GET": state},
        "/slice": {"GET": slice_},
        "/receipt": {"GET": receipt},
        "/blob/{hash}": {"GET": blob_get, "PUT": blob_put},
        "/metrics": {"GET": metrics},
        "/openapi.json": {"GET": schema},
    }
    routes = [Route(path, _by_method(h), methods=list(h)) for path, h in table.items()]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            LedgerError: _ledger_error,
            HTTPException: _http_error,
            Exception: _crash,
        },
    )
    app.state.service = service
    app.state.routes = {path: sorted(h) for path, h in table.items()}
    if queries is not None:
        app.add_middleware(ForwardQueries, pool=queries, head=lambda: led.height)
    app.add_middleware(
        RequestMetrics, service=service, routes=frozenset(p for p in table if "{" not in p)
    )
    return app


def _json(body: bytes) -> Any:
    """Parse a JSON body; ValueError for anything unparsable, deep nesting included."""
    import json

    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _header_json(h: Any) -> dict[str, Any]:
    return {
        "height": h.height,
        "time_ms": h.time_ms,
        "id": h.id.hex(),
        "chain_id": h.chain_id,
        "parent": h.parent.hex(),
        "touch_root": h.touch_root.hex(),
        "shard_roots": [r.hex() for r in h.shard_roots],
        "shard_counts": list(h.shard_counts),
        "proposer": h.proposer.hex(),
        "signature": h.signature.hex(),
        "raw": h.to_bytes().hex(),
    }
