"""The columnar replay form of transactions, written at ingestion so that replay never decodes
a block. One fixed-size row per transaction:

    op:u8 flags:u8 asset:u32 asset2:u32 amount:i64 min_out:i64 acc0:32 acc1:32 id0:u32 id1:u32
                                                                                 (little-endian)

``acc0``/``acc1`` are the transaction's access set (equal for a one-account access set):
transfer and transfer_if (sender, to), mint (to, to), swap (sender, pool), DNN ops (sender, job).
``asset2`` is the asset a swap pays out, a transfer_if's register, the job status key for DNN
ops, and ``asset`` for the rest; ``min_out`` is a swap's minimum or a transfer_if's value + 1;
a claim row carries the job's bounty (asset, amount), an inference row its first register and
sample count. ``id0``/``id1`` are the accounts' dense ids (assigned at ingestion in order of
first appearance), so replay indexes balances by integer instead of hashing 32-byte ids."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from lazyledger.model import Genesis, Transaction
from lazyledger.ops import (
    JOB_STATUS,
    REGISTER_BASE,
    DnnClaim,
    DnnInfer,
    DnnJob,
    DnnReveal,
    JobInfo,
    Mint,
    Private,
    PublicCall,
    Status,
    Swap,
    Transfer,
    TransferIf,
    job_account,
    other_asset,
)

_BODY = struct.Struct("<BBIIqq32s32s")
_IDS = struct.Struct("<II")
ROW = struct.Struct("<BBIIqq32s32sII")
FAIL = 4
"""Row-only op: the transaction fails with status ``min_out`` and changes nothing (a private
call that its readers found invalid)."""

ROW_DTYPE = np.dtype(
    [
        ("op", "u1"),
        ("flags", "u1"),
        ("asset", "<u4"),
        ("asset2", "<u4"),
        ("amount", "<i8"),
        ("min_out", "<i8"),
        ("acc0", "V32"),
        ("acc1", "V32"),
        ("id0", "<u4"),
        ("id1", "<u4"),
    ]
)
assert ROW_DTYPE.itemsize == ROW.size


JobLookup = Callable[[bytes], "JobInfo | None"]
"""The job index: what ingestion recorded of a job account."""
AccountIds = Callable[[bytes], int]
"""An account's dense id."""


def row_of(tx: Transaction, genesis: Genesis, jobs: JobLookup, ids: AccountIds) -> bytes:
    """The replay row of a validated transaction (a private one: its envelope's access set)."""
    return _with_ids(_body_of(tx, genesis, jobs), ids)


def _with_ids(body: bytes, ids: AccountIds) -> bytes:
    return body + _IDS.pack(ids(body[26:58]), ids(body[58:90]))


def _body_of(tx: Transaction, genesis: Genesis, jobs: JobLookup) -> bytes:
    c = tx.call
    if isinstance(c, Private):
        a = c.accounts
        return _BODY.pack(c.OP, 0, 0, 0, 0, 0, a[0], a[-1])
    if isinstance(c, DnnJob):
        return _BODY.pack(c.OP, 0, c.asset, JOB_STATUS, c.bounty, 0, tx.sender, job_account(tx.id))
    if isinstance(c, DnnClaim):
        found = jobs(c.job)
        if found is None:
            raise TypeError("claim for a job that is not indexed")  # validation refuses these
        return _BODY.pack(c.OP, 0, found.asset, JOB_STATUS, found.bounty, 0, tx.sender, c.job)
    if isinstance(c, DnnReveal):
        return _BODY.pack(c.OP, 0, JOB_STATUS, JOB_STATUS, 0, 0, tx.sender, c.job)
    if isinstance(c, DnnInfer):
        return _BODY.pack(
            c.OP, 0, REGISTER_BASE + c.register, JOB_STATUS, c.count, 0, tx.sender, c.job
        )
    return _call_body(tx.sender, c, genesis)


def failed_row(row: bytes, status: Status) -> bytes:
    """A row (same access set and ids) that fails with ``status``."""
    acc0, acc1 = row_accounts(row)
    return _BODY.pack(FAIL, 0, 0, 0, 0, int(status), acc0, acc1) + row[90:98]


def call_row(sender: bytes, c: PublicCall, genesis: Genesis, ids: AccountIds) -> bytes:
    """The replay row of a call that may also travel sealed, sent by ``sender``."""
    return _with_ids(_call_body(sender, c, genesis), ids)


def row_ids(row: bytes) -> dict[bytes, int]:
    """Account -> dense id, for the accounts of a row."""
    id0, id1 = _IDS.unpack_from(row, 90)
    return {row[26:58]: id0, row[58:90]: id1}


def _call_body(sender: bytes, c: PublicCall, genesis: Genesis) -> bytes:
    if isinstance(c, TransferIf):
        reg = REGISTER_BASE + c.register
        return _BODY.pack(c.OP, 0, c.asset, reg, c.amount, c.equals + 1, sender, c.to)
    if isinstance(c, Transfer):
        return _BODY.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, sender, c.to)
    if isinstance(c, Mint):
        return _BODY.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, c.to, c.to)
    if isinstance(c, Swap):
        out = other_asset(genesis, c.pool, c.asset_in)
        return _BODY.pack(c.OP, 0, c.asset_in, out, c.amount_in, c.min_out, sender, c.pool)
    raise TypeError(f"no replay row for {type(c).__name__}")  # pragma: no cover


def row_accounts(row: bytes) -> tuple[bytes, bytes]:
    """The access set (acc0, acc1) of a row."""
    return row[26:58], row[58:90]
