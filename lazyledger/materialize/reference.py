"""The pure-Python reference: replay every transaction of a chain with the semantics of
:mod:`lazyledger.ops`, DNN verdicts and inferences by the NumPy reference of the integer model.

Slow and obviously correct; the Numba kernel, lazy slices, checkpoints, the verdict memo and
the private-transaction path are tested against it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lazyledger.errors import BlobMissing, PrivateStateUnavailable
from lazyledger.materialize import dnn
from lazyledger.materialize.keyring import Keyring
from lazyledger.model import AccountState, Block, Genesis, Transaction
from lazyledger.ops import (
    REGISTRY,
    Context,
    DnnClaim,
    DnnJob,
    Private,
    Status,
    genesis_balances,
    job_account,
)
from lazyledger.shards import pack_position


class ReferenceHost:
    """DNN verdicts and inferences from blobs held in a mapping, by the NumPy reference."""

    def __init__(self, blobs: Mapping[bytes, bytes]) -> None:
        self.blobs = blobs
        self.jobs: dict[bytes, DnnJob] = {}
        self.claims: dict[int, DnnClaim] = {}

    def blob(self, key: bytes) -> bytes:
        if key not in self.blobs:
            raise BlobMissing(key)
        return self.blobs[key]

    def verdict(self, job: bytes, weights: bytes) -> Status:
        terms = self.jobs[job]
        try:
            spec = dnn.decode_spec(self.blob(terms.spec))
            x, y = dnn.load_dataset(spec, self.blob(terms.validation))
        except (dnn.InvalidModel, dnn.InvalidBlob):
            return Status.JOB_INVALID
        try:
            predicted = dnn.infer_reference(spec, self.blob(weights), x)
        except dnn.InvalidBlob:
            return Status.CLAIM_REJECTED
        correct = int((predicted == y).sum())
        passed = correct * 1000 >= terms.threshold_permille * len(y)
        return Status.APPLIED if passed else Status.CLAIM_REJECTED

    def terms(self, job: bytes) -> tuple[int, int]:
        found = self.jobs[job]
        return found.asset, found.bounty

    def classes(self, job: bytes, claim: int, inputs: bytes, count: int) -> list[int] | Status:
        try:
            spec = dnn.decode_spec(self.blob(self.jobs[job].spec))
            x, _ = dnn.load_dataset(spec, self.blob(inputs))
        except (dnn.InvalidModel, dnn.InvalidBlob):
            return Status.BAD_INFER_INPUT
        if len(x) != count:
            return Status.BAD_INFER_INPUT
        return [int(c) for c in dnn.infer_reference(spec, self.blob(self.claims[claim].weights), x)]


def replay_chain(
    genesis: Genesis,
    blocks: Iterable[Block],
    keyring: Keyring | None = None,
    blobs: Mapping[bytes, bytes] | None = None,
) -> tuple[dict[bytes, AccountState], dict[bytes, tuple[bool, str]]]:
    """States of every account seen, and (applied, reason) of every transaction, after
    ``blocks`` (in height order, starting at 1). Private transactions are opened with
    ``keyring`` (one it cannot open raises PrivateStateUnavailable); DNN ops read ``blobs``."""
    state = genesis_balances(genesis)
    host = ReferenceHost(blobs or {})
    nonces: dict[bytes, int] = {}
    receipts: dict[bytes, tuple[bool, str]] = {}
    seen = set(genesis.balances)
    for block in blocks:
        for (h, s, i), tx in block.transactions():
            status = _apply(state, genesis, tx, pack_position(h, s, i), host, keyring or Keyring())
            receipts[tx.id] = (status == 0, REGISTRY.reason(status))
            nonces[tx.sender] = nonces.get(tx.sender, 0) + 1
            seen.add(tx.sender)
            seen.update(tx.access())
    held: dict[bytes, dict[int, int]] = {}
    for (account, asset), value in state.items():
        if value:
            held.setdefault(account, {})[asset] = value
    return (
        {
            a: AccountState.split(nonces.get(a, 0), dict(sorted(held.get(a, {}).items())))
            for a in sorted(seen)
        },
        receipts,
    )


def _apply(
    state: dict[tuple[bytes, int], int],
    genesis: Genesis,
    tx: Transaction,
    position: int,
    host: ReferenceHost,
    keyring: Keyring,
) -> int:
    call = tx.call
    if isinstance(call, Private):
        opened = keyring.open(tx, genesis)
        if opened is None:
            raise PrivateStateUnavailable(None, [tx.id], None)
        if isinstance(opened, Status):
            return opened
        call = opened
    elif isinstance(call, DnnJob):
        host.jobs[job_account(tx.id)] = call
    elif isinstance(call, DnnClaim):
        host.claims[position] = call
    return REGISTRY.apply(state, Context(genesis, tx.sender, tx.id, position, host), call)
