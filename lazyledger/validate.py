"""Stateless validation: form, signatures, nonces (from an index of counts), authority, shard
placement and Merkle roots. Nothing here reads a balance or executes an operation."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from lazyledger.crypto import start_verification, verify
from lazyledger.errors import (
    InvalidBlock,
    InvalidBlockTransaction,
    InvalidGenesis,
    InvalidTransaction,
)
from lazyledger.model import Block, Genesis, Header, Transaction
from lazyledger.ops import MAX, RESERVED_ASSETS, DnnClaim, DnnInfer, DnnReveal, JobInfo
from lazyledger.ops.base import chain_runs
from lazyledger.ops.dnn import JobLookup
from lazyledger.ops.registry import BUILTIN_CODES
from lazyledger.shards import MAX_SECTION_TXS, MAX_SHARDS, shard_of
from lazyledger.shards.merkle import root

BlobCheck = Callable[[Transaction], None]
"""The blob availability rule for one transaction (raises InvalidTransaction naming a blob
that is not held, does not hash right, is over the genesis bound or is malformed)."""

TouchRoot = Callable[[int, Sequence[Sequence[Transaction]]], "bytes | Future[bytes]"]
"""The touch root after a block, from its height and sections (``TouchStage.add_block``), or a
future of it (computed on another thread while the block's other checks run)."""


def check_genesis(g: Genesis) -> None:
    """Raise InvalidGenesis unless the genesis description is self-consistent."""
    if not isinstance(g.n_shards, int) or not 1 <= g.n_shards <= MAX_SHARDS:
        raise InvalidGenesis(f"n_shards {g.n_shards} outside 1..{MAX_SHARDS}")
    g.to_bytes()  # form and ranges
    mb = g.max_blob_bytes
    if not isinstance(mb, int) or isinstance(mb, bool) or mb < 1:
        raise InvalidGenesis(f"max_blob_bytes {g.max_blob_bytes!r} must be a positive integer")
    if not g.authorities:
        raise InvalidGenesis("genesis names no authority")
    for key in g.authorities:
        if len(key) != 32:
            raise InvalidGenesis("authority keys must be 32-byte Ed25519 public keys")
    for asset, issuer in g.assets.items():
        if not 0 <= asset < RESERVED_ASSETS or len(issuer) != 32:
            raise InvalidGenesis(
                f"asset {asset}: ids are below {RESERVED_ASSETS:#x} and issuers 32-byte accounts"
            )
    for pool, (a, b) in g.pools.items():
        if len(pool) != 32:
            raise InvalidGenesis("pool ids must be 32 bytes")
        if a == b or a not in g.assets or b not in g.assets:
            raise InvalidGenesis(f"pool {pool.hex()[:16]} must pair two distinct known assets")
    for code, _ in g.ops:
        if code in BUILTIN_CODES:
            raise InvalidGenesis(f"op code {code} is a built-in operation's")
    if len({code for code, _ in g.ops}) != len(g.ops):
        raise InvalidGenesis("genesis declares an op code twice")
    for account, held in g.balances.items():
        if len(account) != 32:
            raise InvalidGenesis("accounts must be 32 bytes")
        for asset, amount in held.items():
            if asset not in g.assets:
                raise InvalidGenesis(f"balance in unknown asset {asset}")
            if not 0 <= amount <= MAX:
                raise InvalidGenesis(f"balance {amount} outside 0..{MAX}")


class Validator:
    """Checks transactions and blocks against a genesis; it has no way to execute anything."""

    def __init__(self, genesis: Genesis, workers: int | None = None) -> None:
        check_genesis(genesis)
        self.genesis = genesis
        self.pools = frozenset(genesis.pools)
        self.authorities = frozenset(genesis.authorities)
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._executor: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    @property
    def executor(self) -> ThreadPoolExecutor | None:
        if self.workers < 2:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="lazyledger-sig")
        return self._executor

    def check_form(self, tx: Transaction, jobs: JobLookup | None = None) -> None:
        """Everything about one transaction that needs neither a signature check nor an index
        of nonces; ``jobs`` (the job index) is consulted for claims, inferences and reveals."""
        if tx.chain_id and tx.chain_id != self.genesis.chain_id:
            raise InvalidTransaction(
                f"transaction is bound to chain {tx.chain_id!r}, this is {self.genesis.chain_id!r}"
            )
        if tx.sender in self.pools:
            raise InvalidTransaction("a pool account cannot send transactions")
        if not chain_runs(self.genesis, tx.call.OP):
            raise InvalidTransaction(f"operation {tx.call.OP} is not declared by this chain")
        tx.call.check(self.genesis, tx.sender)
        call = tx.call
        if isinstance(call, DnnClaim | DnnInfer | DnnReveal) and jobs is not None:
            check_job_call(call, tx.sender, jobs(call.job))

    def check_transaction(
        self, tx: Transaction, expected_nonce: int | None = None, jobs: JobLookup | None = None
    ) -> None:
        """Full stateless check of one transaction (mempool admission)."""
        self.check_form(tx, jobs)
        if expected_nonce is not None and tx.nonce != expected_nonce:
            raise InvalidTransaction(f"nonce {tx.nonce}, expected {expected_nonce}")
        if not verify(tx.public_key, tx.body, tx.signature):
            raise InvalidTransaction("bad signature")

    def check_header(
        self,
        header: Header,
        parent_id: bytes,
        height: int,
        parent_time: int = 0,
        signature: bool = True,
    ) -> None:
        """Everything about a header but its touch root and shard roots; the proposer's
        signature too unless ``signature`` is false (the caller checks it)."""
        g = self.genesis
        if header.chain_id != g.chain_id:
            raise InvalidBlock(f"block is for chain {header.chain_id!r}, this is {g.chain_id!r}")
        if header.height != height:
            raise InvalidBlock(f"block height {header.height}, expected {height}")
        if header.parent != parent_id:
            raise InvalidBlock(
                f"parent {header.parent.hex()[:16]} is not the head {parent_id.hex()[:16]}"
            )
        if len(header.shard_roots) != g.n_shards:
            raise InvalidBlock(f"{len(header.shard_roots)} shard sections, chain has {g.n_shards}")
        if header.time_ms < parent_time:
            raise InvalidBlock(
                f"block time {header.time_ms} ms is before its parent's {parent_time} ms"
            )
        if header.proposer not in self.authorities:
            raise InvalidBlock("proposer is not an authority of this chain")
        if len(header.signature) != 64 or (
            signature and not verify(header.proposer, header.body, header.signature)
        ):
            raise InvalidBlock("bad proposer signature")

    def check_block(
        self,
        block: Block,
        parent_id: bytes,
        height: int,
        nonce_of: Callable[[bytes], int],
        jobs: JobLookup | None = None,
        parent_time: int = 0,
        blobs: BlobCheck | None = None,
        touches: TouchRoot | None = None,
    ) -> dict[bytes, int]:
        """Validate a whole block; return the senders' nonce counts after it.

        ``nonce_of(account)`` gives the number of transactions the account sent before this
        block. Raises InvalidBlock (InvalidBlockTransaction for a bad transaction)."""
        counts, signatures = self.check_block_deferred(
            block, parent_id, height, nonce_of, jobs, parent_time, blobs, touches
        )
        signatures()
        return counts

    def check_block_deferred(
        self,
        block: Block,
        parent_id: bytes,
        height: int,
        nonce_of: Callable[[bytes], int],
        jobs: JobLookup | None = None,
        parent_time: int = 0,
        blobs: BlobCheck | None = None,
        touches: TouchRoot | None = None,
        pool: bool = True,
    ) -> tuple[dict[bytes, int], Callable[[], None]]:
        """:meth:`check_block` with the signature checks still running: returns the nonce
        counts and a function that waits for the signatures and raises if one is bad, so the
        caller can overlap other work (storing the sections) with them. ``blobs``, if given,
        is the blob availability rule, applied to every transaction after its form.
        ``touches(height, sections)`` gives the touch root after the block (a
        :class:`TouchStage`'s ``add_block``), or a future of it: a header whose ``touch_root``
        differs makes the block invalid (raised by the returned function if a future). The
        signature checks (the proposer's too) run on the validator's pool, as compiled calls
        without the GIL, overlapping the rest; without ``pool``, in the returned function."""
        header = block.header
        self.check_header(header, parent_id, height, parent_time, signature=False)
        n = self.genesis.n_shards
        if len(block.sections) != n:
            raise InvalidBlock(f"{len(block.sections)} sections, chain has {n}")
        signed = [(tx.public_key, tx.signature + tx.body) for sec in block.sections for tx in sec]
        where = [(s, i) for s, sec in enumerate(block.sections) for i in range(len(sec))]
        signed.append((header.proposer, header.signature + header.body))
        signatures = start_verification(signed, self.executor if pool else None, self.workers)
        root_after = touches(height, block.sections) if touches is not None else None
        counts: dict[bytes, int] = {}
        for s, section in enumerate(block.sections):
            if len(section) != header.shard_counts[s]:
                raise InvalidBlock(
                    f"section {s} holds {len(section)} transactions,"
                    f" header says {header.shard_counts[s]}"
                )
            if len(section) > MAX_SECTION_TXS:
                raise InvalidBlock(f"section {s} exceeds {MAX_SECTION_TXS} transactions")
            for i, tx in enumerate(section):
                sender = tx.sender
                try:
                    self.check_form(tx, jobs)
                    if blobs is not None:
                        blobs(tx)
                except InvalidTransaction as e:
                    raise InvalidBlockTransaction(s, i, str(e)) from None
                if shard_of(sender, n) != s:
                    raise InvalidBlockTransaction(
                        s, i, f"sender belongs to shard {shard_of(sender, n)}"
                    )
                expected = counts[sender] if sender in counts else nonce_of(sender)
                if tx.nonce != expected:
                    raise InvalidBlockTransaction(s, i, f"nonce {tx.nonce}, expected {expected}")
                counts[sender] = expected + 1
            if root([tx.id for tx in section]) != header.shard_roots[s]:
                raise InvalidBlock(f"section {s} does not match its Merkle root")
        if isinstance(root_after, bytes):
            _check_touch_root(header, root_after)

        def finish() -> None:
            if isinstance(root_after, Future):
                _check_touch_root(header, root_after.result())
            bad = signatures()
            if bad == len(where):
                raise InvalidBlock("bad proposer signature")
            if bad is not None:
                raise InvalidBlockTransaction(*where[bad], "bad signature")

        return counts, finish


def _check_touch_root(header: Header, expected: bytes) -> None:
    if expected != header.touch_root:
        raise InvalidBlock(
            f"touch_root {header.touch_root.hex()[:16]} does not commit to the touch lists after"
            f" this block (they give {expected.hex()[:16]})"
        )


def check_job_call(
    call: DnnClaim | DnnInfer | DnnReveal, sender: bytes, job: JobInfo | None
) -> None:
    """What the job index says of a claim, inference or reveal (jobs in earlier blocks only)."""
    if job is None:
        raise InvalidTransaction(f"no job {call.job.hex()[:16]} in an earlier block")
    if isinstance(call, DnnClaim) and job.hidden and job.revealed:
        raise InvalidTransaction("claims are closed: the job's hidden validation set is revealed")
    if isinstance(call, DnnReveal):
        if not job.hidden:
            raise InvalidTransaction("the job has no hidden validation set to reveal")
        if sender != job.owner:
            raise InvalidTransaction("only the job's owner may reveal its validation set")
        if job.revealed:
            raise InvalidTransaction("the job's validation set is already revealed")
