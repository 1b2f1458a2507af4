"""DNN jobs: ``dnn_job`` posts a training task with an escrowed bounty, ``dnn_claim`` claims it
with a weights blob (the first claim that passes the job's property check wins),
``dnn_infer`` runs the accepted model into the sender's registers, ``dnn_reveal`` publishes a
hidden validation set. Claims and inferences need blobs and model checks: a Python host applies
them at replay (:mod:`lazyledger.materialize.host`)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from numba import njit

from lazyledger.errors import InvalidTransaction
from lazyledger.model import REGISTER_BASE, job_account
from lazyledger.ops.base import (
    JOB_CLOSED,
    JOB_OPEN,
    JOB_STATUS,
    JOB_WON,
    MAX,
    Balances,
    Context,
    DnnHost,
    Fixed,
    Op,
    OpSpec,
    Status,
    check_account,
    check_amount,
    check_asset,
    check_hash,
    pack_fields,
    row_body,
    unpack_fields,
)
from lazyledger.ops.transfer import check_register

if TYPE_CHECKING:
    from lazyledger.model import Genesis

_MAX = np.int64(MAX)
_APPLIED, _INSUFFICIENT = int(Status.APPLIED), int(Status.INSUFFICIENT_BALANCE)
_OVERFLOW = int(Status.BALANCE_OVERFLOW)


@attrs.frozen(slots=True)
class DnnJob:
    """Post a training task: model spec, training and validation data (blob hashes), the
    accuracy threshold in permille, and a bounty escrowed from the sender into the job account.
    Access {sender, job account}."""

    spec: bytes
    train: bytes
    validation: bytes
    threshold_permille: int
    asset: int
    bounty: int
    hidden: bool = False
    """The validation set is withheld (only its hash is public) until the owner's dnn_reveal;
    claims are taken only before the reveal, so claimers cannot fit the test set."""
    OP: ClassVar[Op] = Op.DNN_JOB
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32s32sHIQB")

    def pack(self) -> bytes:
        names = ("spec", "train", "validation", "threshold_permille", "asset", "bounty", "hidden")
        return pack_fields(self.LAYOUT, "dnn_job", names, [getattr(self, n) for n in names])

    @classmethod
    def unpack(cls, data: bytes) -> DnnJob:
        spec, train, validation, threshold, asset, bounty, hidden = unpack_fields(
            cls.LAYOUT, "dnn_job", data
        )
        if hidden not in (0, 1):
            raise InvalidTransaction(f"dnn_job hidden flag {hidden} is not 0 or 1")
        return cls(spec, train, validation, threshold, asset, bounty, bool(hidden))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        raise TypeError("a job's access set needs its transaction id: use Transaction.access()")

    def access_of_tx(self, sender: bytes, tx_id: bytes) -> tuple[bytes, ...]:
        return (sender, job_account(tx_id))

    def check(self, genesis: Genesis, sender: bytes) -> None:
        for name in ("spec", "train", "validation"):
            check_hash(name, getattr(self, name))
        if not 1 <= self.threshold_permille <= 1000:
            raise InvalidTransaction(
                f"threshold {self.threshold_permille} outside 1..1000 permille"
            )
        check_asset(genesis, self.asset)
        check_amount("bounty", self.bounty)


@attrs.frozen(slots=True)
class DnnClaim(Fixed):
    """Claim a job's bounty with a weights blob. The first claim (in global order) whose weights
    pass the job's property check wins. Access {claimer, job account}."""

    job: bytes
    weights: bytes
    OP: ClassVar[Op] = Op.DNN_CLAIM
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32s")
    NAME: ClassVar[str] = "dnn_claim"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("job", self.job)
        check_hash("weights", self.weights)


@attrs.frozen(slots=True)
class DnnInfer(Fixed):
    """Run a job's accepted model on an input blob of ``count`` samples; class id + 1 of sample
    k goes to the sender's register ``register + k``. Access {sender, job account}."""

    job: bytes
    inputs: bytes
    register: int
    count: int
    OP: ClassVar[Op] = Op.DNN_INFER
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32sHB")
    NAME: ClassVar[str] = "dnn_infer"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("job", self.job)
        check_hash("inputs", self.inputs)
        check_register(self.register, self.count)


@attrs.frozen(slots=True)
class DnnReveal(Fixed):
    """The job owner publishes a hidden validation set (the blob its hash names) and closes
    the job to new claims. Access {sender, job account}."""

    job: bytes
    OP: ClassVar[Op] = Op.DNN_REVEAL
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s")
    NAME: ClassVar[str] = "dnn_reveal"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("job", self.job)


@attrs.frozen(slots=True)
class JobInfo:
    """What the job index records of a job at ingestion (validators read it; never state)."""

    position: int
    asset: int
    bounty: int
    owner: bytes
    hidden: bool
    revealed: bool


JobLookup = Callable[[bytes], "JobInfo | None"]
"""The job index: what ingestion recorded of a job account."""


def apply_job(state: Balances, sender: bytes, job: bytes, call: DnnJob) -> Status:
    """Escrow the bounty from the sender into the job account and open the job."""
    have = state.get((sender, call.asset), 0)
    if have < call.bounty:
        return Status.INSUFFICIENT_BALANCE
    held = state.get((job, call.asset), 0)
    if held + call.bounty > MAX:
        return Status.BALANCE_OVERFLOW
    state[(sender, call.asset)] = have - call.bounty
    state[(job, call.asset)] = held + call.bounty
    state[(job, JOB_STATUS)] = JOB_OPEN
    return Status.APPLIED


def apply_reveal(state: Balances, call: DnnReveal) -> Status:
    """Close an open job to new claims (its hidden validation set is now public)."""
    if state.get((call.job, JOB_STATUS), 0) == JOB_OPEN:
        state[(call.job, JOB_STATUS)] = JOB_CLOSED
    return Status.APPLIED


def apply_claim(
    state: Balances,
    sender: bytes,
    call: DnnClaim,
    terms: tuple[int, int],
    position: int,
    host: DnnHost,
) -> Status:
    """Pay the bounty to the first claim whose weights pass; record it as the job's result.
    The check runs only while the job is open."""
    if state.get((call.job, JOB_STATUS), 0) != JOB_OPEN:
        return Status.JOB_NOT_OPEN
    verdict = host.verdict(call.job, call.weights)
    if verdict != Status.APPLIED:
        return verdict
    asset, bounty = terms
    held = state.get((call.job, asset), 0)
    got = state.get((sender, asset), 0)
    if held < bounty:
        return Status.INSUFFICIENT_BALANCE
    if got + bounty > MAX:
        return Status.BALANCE_OVERFLOW
    state[(call.job, asset)] = held - bounty
    state[(sender, asset)] = state.get((sender, asset), 0) + bounty
    state[(call.job, JOB_STATUS)] = JOB_WON + position
    return Status.APPLIED


def apply_infer(state: Balances, sender: bytes, call: DnnInfer, host: DnnHost) -> Status:
    """Write the class ids the job's accepted model gives the inputs into sender registers."""
    status = state.get((call.job, JOB_STATUS), 0)
    if status < JOB_WON:
        return Status.NO_RESULT
    result = host.classes(call.job, status - JOB_WON, call.inputs, call.count)
    if isinstance(result, Status):
        return result
    for k, c in enumerate(result):
        state[(sender, REGISTER_BASE + call.register + k)] = c + 1
    return Status.APPLIED


def _host(ctx: Context) -> DnnHost:
    if ctx.host is None:
        raise TypeError("DNN claims and inferences need a host (blobs and model checks)")
    return ctx.host


def _spec_job(state: Balances, ctx: Context, call: DnnJob) -> Status:
    return apply_job(state, ctx.sender, job_account(ctx.tx_id), call)


def _spec_reveal(state: Balances, ctx: Context, call: DnnReveal) -> Status:
    return apply_reveal(state, call)


def _spec_claim(state: Balances, ctx: Context, call: DnnClaim) -> Status:
    host = _host(ctx)
    return apply_claim(state, ctx.sender, call, host.terms(call.job), ctx.position, host)


def _spec_infer(state: Balances, ctx: Context, call: DnnInfer) -> Status:
    return apply_infer(state, ctx.sender, call, _host(ctx))


def row_job(ctx: Context, call: DnnJob) -> bytes:
    job = job_account(ctx.tx_id)
    return row_body(call.OP, call.asset, JOB_STATUS, call.bounty, 0, ctx.sender, job)


def row_claim(ctx: Context, call: DnnClaim) -> bytes:
    """A claim row carries the job's bounty (asset, amount), from the job index."""
    found = ctx.jobs(call.job) if ctx.jobs is not None else None
    if found is None:
        raise TypeError("claim for a job that is not indexed")  # validation refuses these
    return row_body(call.OP, found.asset, JOB_STATUS, found.bounty, 0, ctx.sender, call.job)


def row_reveal(ctx: Context, call: DnnReveal) -> bytes:
    return row_body(call.OP, JOB_STATUS, JOB_STATUS, 0, 0, ctx.sender, call.job)


def row_infer(ctx: Context, call: DnnInfer) -> bytes:
    """An inference row carries its first register and its sample count."""
    first = REGISTER_BASE + call.register
    return row_body(call.OP, first, JOB_STATUS, call.count, 0, ctx.sender, call.job)


@njit(cache=True, inline="always")
def kernel_job(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """Escrow the bounty (acc0, asset) -> (acc1, asset) and open the job (acc1, asset2)."""
    if bal[a0] < v:
        return _INSUFFICIENT
    if bal[a1] > _MAX - v:
        return _OVERFLOW
    bal[a0] -= v
    bal[a1] += v
    bal[b1] = JOB_OPEN
    return _APPLIED


@njit(cache=True, inline="always")
def kernel_reveal(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """Close an open job (its status slot (acc1, asset2)) to new claims."""
    if bal[b1] == JOB_OPEN:
        bal[b1] = JOB_CLOSED
    return _APPLIED


SPECS = (
    OpSpec(Op.DNN_JOB, "dnn_job", DnnJob, _spec_job, row_job, kernel_job, stored_whole=True),
    OpSpec(
        Op.DNN_CLAIM, "dnn_claim", DnnClaim, _spec_claim, row_claim, hosted=True, stored_whole=True
    ),
    OpSpec(
        Op.DNN_INFER, "dnn_infer", DnnInfer, _spec_infer, row_infer, hosted=True, stored_whole=True
    ),
    OpSpec(Op.DNN_REVEAL, "dnn_reveal", DnnReveal, _spec_reveal, row_reveal, kernel_reveal),
)
