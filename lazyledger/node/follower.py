"""Follower mode: pull blocks from an upstream node, validate them (never executing anything)
and store them; after downtime, catch up from the local head."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import anyio.to_thread
import httpx

from lazyledger.errors import InvalidBlock, LedgerError
from lazyledger.materialize.host import blob_hash
from lazyledger.node.peers import HEIGHT_HEADER, PEER_HEADER
from lazyledger.node.service import NodeService

log = logging.getLogger("lazyledger.node.follower")

CATCH_UP_BATCH = 32
"""Blocks fetched and then stored with one group commit while catching up."""


class UpstreamMismatch(LedgerError):
    """The upstream node runs another chain (different genesis)."""


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def sync_once(service: NodeService, http: httpx.AsyncClient, stop: asyncio.Event) -> int:
    """Append every block the upstream has beyond our head; returns how many."""
    r = await http.get("/status", headers={HEIGHT_HEADER: str(service.ledger.height)})
    r.raise_for_status()
    status = r.json()
    if status["genesis_id"] != service.ledger.genesis_id.hex():
        raise UpstreamMismatch(
            f"upstream genesis {str(status['genesis_id'])[:16]} (chain {status.get('chain_id')!r}) "
            f"is not ours ({service.ledger.genesis_id.hex()[:16]}, "
            f"chain {service.ledger.genesis.chain_id!r})"
        )
    target = int(status["height"])
    service.upstream_height = target
    n = 0
    while service.ledger.height < target and not stop.is_set():
        first = service.ledger.height + 1
        batch = []
        for h in range(first, min(target, first + CATCH_UP_BATCH - 1) + 1):
            r = await http.get("/block", params={"height": h, "encoding": "raw"})
            r.raise_for_status()
            batch.append(r.content)
            await fetch_blobs(service, http, h)
        await anyio.to_thread.run_sync(service.commit_many, batch)  # one group commit
        n += len(batch)
    return n


async def fetch_blobs(service: NodeService, http: httpx.AsyncClient, height: int) -> int:
    """Fetch the blobs the upstream lists for block ``height`` that this node lacks; returns
    how many it stored. The list is only a hint: validation checks the block's blobs itself,
    so a blob left out, withheld (404) or not matching its hash leaves the block refused."""
    r = await http.get("/block_blobs", params={"height": height})
    r.raise_for_status()
    led = service.ledger
    n = 0
    for item in r.json()["blobs"]:
        key = bytes.fromhex(item)
        if len(key) != 32 or await anyio.to_thread.run_sync(led.has_blob, key):
            continue
        got = await http.get(f"/blob/{item}")
        if got.status_code == 404:
            log.warning("upstream withholds a blob", extra={"height": height, "blob": item})
            continue
        got.raise_for_status()
        if blob_hash(got.content) != key:
            log.warning("upstream sent a blob not matching its hash", extra={"blob": item})
            continue
        try:
            await anyio.to_thread.run_sync(led.put_blob, got.content)
        except LedgerError as e:  # over the genesis bound: the block will be refused
            log.warning("blob refused", extra={"blob": item, "reason": str(e)})
            continue
        n += 1
    return n


async def follow(service: NodeService, upstream: str, stop: asyncio.Event) -> None:
    """Keep the local chain in step with ``upstream`` until ``stop``; errors back off."""
    cfg = service.config
    backoff = cfg.poll_interval
    named = {PEER_HEADER: cfg.url}  # so the upstream lists this node among its peers
    async with httpx.AsyncClient(base_url=upstream, timeout=30.0, headers=named) as http:
        while not stop.is_set():
            try:
                n = await sync_once(service, http, stop)
                service.synced_at = time.time()
                service.upstream_error = None
                if n:
                    log.info("synced", extra={"blocks": n, "height": service.ledger.height})
                backoff = cfg.poll_interval
            except (httpx.HTTPError, ValueError, KeyError) as e:
                reason = str(e) or type(e).__name__
                if service.upstream_error is None:  # once per outage, not once per retry
                    log.warning(
                        "upstream unavailable", extra={"upstream": upstream, "reason": reason}
                    )
                service.upstream_error = reason
                backoff = min(backoff * 2, 5.0)
            except UpstreamMismatch as e:
                log.error("upstream runs another chain", extra={"reason": str(e)})
                service.upstream_error = str(e)
                backoff = 5.0
            except InvalidBlock as e:
                log.error("upstream sent an invalid block", extra={"reason": str(e)})
                service.upstream_error = str(e)
                backoff = 5.0
            await _sleep(stop, backoff)
