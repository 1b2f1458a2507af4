"""The node on every core: read-only query routes served by worker processes.

The owner process (proposer, follower or observer) keeps the only writable handle and the
public socket. With ``query_workers = N`` it starts N worker processes (``python -m
lazyledger.node.query``), each holding a read-only handle on the same datadir and serving the
query app on a Unix socket of its own; the owner forwards every GET of a query route
(:data:`QUERY_ROUTES`) to the worker with the fewest requests in flight, naming its own head in
the ``x-lazyledger-at-least`` header. A worker refreshes its handle to at least that height
before it answers, so an answer is never older than the owner's head when the request came
in, and one naming a height is answered at that height. ``/metrics`` on the owner merges its
own metrics with every worker's, each sample labelled ``worker`` ("owner", "1".."N").

A worker exits when its owner does (it watches its parent), so an owner killed with SIGKILL
leaves no process behind."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.types import ASGIApp, Receive, Scope, Send

from lazyledger.errors import LedgerError

log = logging.getLogger("lazyledger.node.query")

QUERY_ROUTES = frozenset(
    {"/state", "/slice", "/receipt", "/tx", "/block", "/header", "/headers", "/blockchain"}
)
"""Routes a query worker answers for the owner: read-only, answered from committed blocks."""

AT_LEAST_HEADER = "x-lazyledger-at-least"
"""Forwarded requests carry the owner's head: the worker refreshes to at least that height."""

START_DEADLINE_S = 120.0
"""How long the owner waits for its workers to answer /health (numba warm-up on a busy box)."""

WORKER_HEADERS = ("content-type", "content-length", "allow")
"""Response headers passed back from a worker."""


class QueryWorkersUnavailable(LedgerError):
    """The query workers did not start, or one stopped answering."""


class QueryPool:
    """The owner's side: starts, forwards to, scrapes and stops the worker processes."""

    def __init__(
        self, datadir: Path, n: int, log_level: str = "info", ops: str | None = None
    ) -> None:
        self.datadir, self.n, self.log_level, self.ops = datadir, n, log_level, ops
        self._dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._clients: list[httpx.AsyncClient] = []
        self._inflight = [0] * n
        self._turn = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def start(self) -> None:
        """Start the workers and wait until each answers /health."""
        self._dir = Path(tempfile.mkdtemp(prefix="lazyledger-q"))  # short: AF_UNIX paths
        for i in range(1, self.n + 1):
            sock = self._dir / f"{i}.sock"
            cmd = [sys.executable, "-m", "lazyledger.node.query", "--datadir", str(self.datadir)]
            cmd += ["--socket", str(sock), "--name", str(i), "--parent", str(os.getpid())]
            cmd += ["--log-level", self.log_level]
            cmd += ["--ops", self.ops] if self.ops else []
            self._procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
            transport = httpx.AsyncHTTPTransport(uds=str(sock))
            self._clients.append(
                httpx.AsyncClient(transport=transport, base_url="http://worker", timeout=300.0)
            )
        end = time.monotonic() + START_DEADLINE_S
        for i, (proc, client) in enumerate(zip(self._procs, self._clients, strict=True), 1):
            while True:
                if proc.poll() is not None:
                    raise QueryWorkersUnavailable(
                        f"query worker {i} exited with status {proc.returncode} at start"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        break
                if time.monotonic() > end:
                    raise QueryWorkersUnavailable(f"query worker {i} did not start in time")
                await asyncio.sleep(0.1)
        log.info("query workers started", extra={"workers": self.n, "pids": self.pids})

    def _pick(self) -> int:
        """The worker with the fewest requests in flight (ties: the next in turn)."""
        self._turn = (self._turn + 1) % self.n
        order = [(self._turn + k) % self.n for k in range(self.n)]
        return min(order, key=lambda i: self._inflight[i])

    async def forward(self, scope: Scope, send: Send, height: int) -> None:
        """Answer one query request with a worker's answer (503 if it cannot be reached)."""
        i = self._pick()
        url = httpx.URL(scope["path"], query=scope.get("query_string", b""))
        self._inflight[i] += 1
        try:
            r = await self._clients[i].request(
                scope["method"], url, headers={AT_LEAST_HEADER: str(height)}
            )
        except httpx.HTTPError as e:
            reason = str(e) or type(e).__name__
            log.warning("query worker unreachable", extra={"worker": i + 1, "reason": reason})
            body = (
                b'{"error":{"kind":"QueryWorkersUnavailable","message":"query worker '
                + str(i + 1).encode()
                + b' is unreachable; retry later"}}'
            )
            await _respond(send, 503, [(b"content-type", b"application/json")], body)
            return
        finally:
            self._inflight[i] -= 1
        headers = [(k.encode(), r.headers[k].encode()) for k in WORKER_HEADERS if k in r.headers]
        await _respond(send, r.status_code, headers, r.content)

    async def scrape(self) -> list[tuple[str, bytes]]:
        """Each worker's /metrics body (a worker that does not answer is left out)."""
        out: list[tuple[str, bytes]] = []
        for i, client in enumerate(self._clients, 1):
            try:
                r = await client.get("/metrics")
                if r.status_code == 200:
                    out.append((str(i), r.content))
            except httpx.HTTPError:
                log.warning("query worker metrics unavailable", extra={"worker": i})
        return out

    async def stop(self) -> None:
        """Stop the workers (SIGTERM: they finish what they answer) and remove the sockets."""
        for client in self._clients:
            await client.aclose()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._procs, self._clients = [], []


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ForwardQueries:
    """Owner-side ASGI middleware: GET/HEAD of a query route goes to a query worker."""

    def __init__(self, app: ASGIApp, pool: QueryPool, head: Any) -> None:
        self.app, self.pool, self.head = app, pool, head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"] in QUERY_ROUTES
        ):
            await self.pool.forward(scope, send, self.head())
            return
        await self.app(scope, receive, send)


class AtLeast:
    """Worker-side ASGI middleware: refresh the read-only handle to the owner's head."""

    def __init__(self, app: ASGIApp, service: Any) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            wanted = next(
                (v for k, v in scope["headers"] if k == AT_LEAST_HEADER.encode()), b""
            ).decode("latin-1")
            if wanted.isdigit():
                led = self.service.ledger
                end = time.monotonic() + 10.0  # the owner has committed it: seen at once
                while led.height < int(wanted) and time.monotonic() < end:
                    await asyncio.to_thread(led.refresh)
                    if led.height < int(wanted):
                        await asyncio.sleep(0.01)
                self.service.metrics.height.set(led.height)
        await self.app(scope, receive, send)


def merge_metrics(parts: Sequence[tuple[str, bytes]]) -> bytes:
    """Several Prometheus text expositions as one, each sample labelled ``worker``."""
    families: dict[str, Metric] = {}
    for worker, body in parts:
        for fam in text_string_to_metric_families(body.decode()):
            merged = families.get(fam.name)
            if merged is None:
                merged = families[fam.name] = Metric(fam.name, fam.documentation, fam.type)
            merged.samples.extend(
                Sample(s.name, {**s.labels, "worker": worker}, s.value, s.timestamp, s.exemplar)
                for s in fam.samples
            )

    class Merged:
        def collect(self) -> list[Metric]:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Merged())
    return bytes(generate_latest(registry))


# -- the worker process -----------------------------------------------------------------------


def _watch_parent(parent: int, server: Any) -> None:
    """Ask the server to exit once the owner is gone (killed, even with SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    log.warning("owner gone: query worker exits", extra={"owner": parent})
    server.should_exit = True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lazyledger.node.query``: one query worker (started by the owner)."""
    import uvicorn

    from lazyledger.ledger import Ledger
    from lazyledger.node import logs
    from lazyledger.node.app import create_app
    from lazyledger.node.config import load_config
    from lazyledger.node.service import NodeService

    p = argparse.ArgumentParser(prog="lazyledger-query-worker")
    p.add_argument("--datadir", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--log-level", default="info")
    p.add_argument("--ops", help="module:NAME of the chain's embedder OpSpecs")
    args = p.parse_args(argv)
    logs.setup(args.log_level)
    # a worker never follows, proposes or sends: it answers queries from its read-only handle
    cfg = attrs.evolve(load_config(Path(args.datadir)), follow=None, query_workers=0)
    if args.ops:
        cfg = attrs.evolve(cfg, ops=args.ops)
    led = Ledger.open(cfg.ledger_path, readonly=True, workers=1, ops=cfg.op_specs())
    service = NodeService(led, cfg, "query")
    app = AtLeast(create_app(service), service)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            uds=args.socket,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=300,
        )
    )
    threading.Thread(target=_watch_parent, args=(args.parent, server), daemon=True).start()
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
