"""Block production behind a small interface, so consensus stays pluggable.

A :class:`BlockProducer` only turns pending transactions into the next block; the node decides
*when* (an interval or a size limit) and appends the result. An embedding chain or a BFT engine
can skip this loop entirely and drive ``Ledger.propose``/``NodeService.commit`` itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

import anyio.to_thread

from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidBlockTransaction, LedgerError
from lazyledger.ledger import Ledger
from lazyledger.model import Block, Transaction
from lazyledger.node.service import NodeService

log = logging.getLogger("lazyledger.node.producer")


class BlockProducer(Protocol):
    """Consensus plug: builds (and signs) the next block from transactions the node picked."""

    def propose(self, ledger: Ledger, txs: Sequence[Transaction]) -> Block: ...


class AuthorityProducer:
    """Proof of authority: one key named in genesis signs every block it proposes."""

    def __init__(self, key: Keypair) -> None:
        self.key = key

    def propose(self, ledger: Ledger, txs: Sequence[Transaction]) -> Block:
        return ledger.propose(txs, self.key)


def hold_back(ledger: Ledger, txs: Sequence[Transaction]) -> list[Transaction]:
    """``txs`` less those naming a blob this node does not hold (they would make the block
    invalid) and, to keep nonces contiguous, every later one from the same sender. What is
    held back stays in the mempool until its blob is published."""
    blocked: set[bytes] = set()
    out = []
    for tx in txs:
        if tx.sender in blocked or ledger.missing_blobs(tx):
            blocked.add(tx.sender)
            continue
        out.append(tx)
    if blocked:
        log.debug("transactions held back for missing blobs", extra={"senders": len(blocked)})
    return out


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()


async def produce(
    service: NodeService, producer: BlockProducer, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    """Cut a block when ``block_interval`` has passed or ``wake`` is set (the mempool reached
    ``max_block_txs``), until ``stop``. A block being written when ``stop`` is set is finished
    first: worker threads are never abandoned."""
    cfg = service.config
    while not stop.is_set():
        await _wait(wake, cfg.block_interval)
        wake.clear()
        if stop.is_set():
            break
        taken = service.mempool.take(cfg.max_block_txs, service.ledger.nonce)
        txs = await anyio.to_thread.run_sync(hold_back, service.ledger, taken)
        if not txs:
            continue
        try:
            block = await anyio.to_thread.run_sync(producer.propose, service.ledger, txs)
            await anyio.to_thread.run_sync(service.commit, block)
        except InvalidBlockTransaction as e:
            # Admission is stateless and may race with a block; drop the offender and go on.
            bad = block.sections[e.shard][e.index]
            service.mempool.remove([bad])
            log.warning("dropped a transaction the block refused", extra={"reason": str(e)})
        except LedgerError as e:
            log.error("block production failed", extra={"reason": str(e)})
            await _wait(stop, cfg.block_interval)
