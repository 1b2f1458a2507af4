"""The Python side of replay: DNN claims and inferences, which need blobs and model checks.

Verdicts are deterministic functions of blobs named on chain (the job's spec names its verdict
rule: :mod:`lazyledger.materialize.dnn` for rule 1, :mod:`lazyledger.materialize.qnet` for rule 2,
whose backend choice changes speed only), memoised once per node in the cache environment."""

from __future__ import annotations

from collections.abc import Callable

import blake3
import numpy as np

from lazyledger.chain import Chain
from lazyledger.materialize import dnn
from lazyledger.materialize.replay import Slots
from lazyledger.model import Transaction
from lazyledger.ops import (
    JOB_STATUS,
    Balances,
    DnnClaim,
    DnnInfer,
    DnnJob,
    Op,
    Status,
    apply_claim,
    apply_infer,
)

TxAt = Callable[[int], Transaction]
"""The transaction at a packed position (from the hosted-transactions table)."""


def blob_hash(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


class StoreHost:
    """Implements :class:`lazyledger.ops.DnnHost` over the stored chain, with the verdict
    memo."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.tx_at: TxAt = chain.hosted

    def blob(self, key: bytes) -> bytes:
        return self.chain.blob(key)

    def job(self, job: bytes) -> DnnJob:
        pos = self.chain.job_position(job)
        call = self.tx_at(pos).call if pos is not None else None
        if not isinstance(call, DnnJob):
            raise LookupError(f"job {job.hex()} is not indexed")  # validation refuses these
        return call

    def terms(self, job: bytes) -> tuple[int, int]:
        found = self.job(job)
        return found.asset, found.bounty

    def memo(self, job: bytes, weights: bytes) -> Status | None:
        found = self.chain.verdict(job, weights)
        return None if found is None else Status(found[0])

    def verdict(self, job: bytes, weights: bytes) -> Status:
        found = self.memo(job, weights)
        if found is not None:
            return found
        terms = self.job(job)
        try:
            spec = dnn.decode_spec(self.blob(terms.spec))
            result = dnn.check_claim(
                spec, self.blob(weights), self.blob(terms.validation), terms.threshold_permille
            )
            status = Status.APPLIED if result.passed else Status.CLAIM_REJECTED
            correct, total = result.correct, result.total
        except (dnn.InvalidModel, dnn.InvalidBlob):
            status, correct, total = Status.JOB_INVALID, 0, 0
        self.chain.put_verdict(job, weights, (status, correct, total))
        return status

    def classes(self, job: bytes, claim: int, inputs: bytes, count: int) -> list[int] | Status:
        terms = self.job(job)
        call = self.tx_at(claim).call
        assert isinstance(call, DnnClaim)
        try:
            spec = dnn.decode_spec(self.blob(terms.spec))
            x, _ = dnn.load_dataset(spec, self.blob(inputs))
        except (dnn.InvalidModel, dnn.InvalidBlob):
            return Status.BAD_INFER_INPUT
        if len(x) != count:
            return Status.BAD_INFER_INPUT
        return [int(c) for c in dnn.infer(spec, self.blob(call.weights), x)]

    def replay_host(
        self, rows: np.ndarray, position: Callable[[int], int]
    ) -> Callable[[int, Slots], int]:
        """The callback :func:`replay_rows` gives the rows it leaves to Python."""

        def run(i: int, slots: Slots) -> int:
            row = rows[i]
            sender, job = bytes(row["acc0"]), bytes(row["acc1"])
            ids = {sender: int(row["id0"]), job: int(row["id1"])}
            tx = self.tx_at(position(i))
            call = tx.call
            keys: list[tuple[bytes, int]] = [(job, JOB_STATUS)]
            if int(row["op"]) == Op.DNN_CLAIM:
                asset = int(row["asset"])
                keys += [(sender, asset), (job, asset)]
            else:
                first = int(row["asset"])
                keys += [(sender, first + k) for k in range(int(row["amount"]))]
            state: Balances = {(a, x): slots.get(ids[a], x) for a, x in keys}
            if isinstance(call, DnnClaim):
                status = apply_claim(
                    state,
                    tx.sender,
                    call,
                    (int(row["asset"]), int(row["amount"])),
                    position(i),
                    self,
                )
            else:
                assert isinstance(call, DnnInfer)
                status = apply_infer(state, tx.sender, call, self)
            for (account, asset), value in state.items():
                slots.set(ids[account], asset, value)
            return int(status)

        return run
