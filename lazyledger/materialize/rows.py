"""The columnar replay form of transactions, written at ingestion so that replay never decodes
a block. One fixed-size row per transaction:

    op:u8 flags:u8 asset:u32 asset2:u32 amount:i64 min_out:i64 acc0:32 acc1:32   (little-endian)

``acc0``/``acc1`` are the transaction's access set (equal for a one-account access set):
transfer and transfer_if (sender, to), mint (to, to), swap (sender, pool), DNN ops (sender, job).
``asset2`` is the asset a swap pays out, a transfer_if's register, the job status key for DNN
ops, and ``asset`` for the rest; ``min_out`` is a swap's minimum or a transfer_if's value + 1;
a claim row carries the job's bounty (asset, amount), an inference row its first register and
sample count."""

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

ROW = struct.Struct("<BBIIqq32s32s")
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
    ]
)
assert ROW_DTYPE.itemsize == ROW.size


JobLookup = Callable[[bytes], "JobInfo | None"]
"""The job index: what ingestion recorded of a job account."""


def row_of(tx: Transaction, genesis: Genesis, jobs: JobLookup) -> bytes:
    """The replay row of a validated transaction (a private one: its envelope's access set)."""
    c = tx.call
    if isinstance(c, Private):
        a = c.accounts
        return ROW.pack(c.OP, 0, 0, 0, 0, 0, a[0], a[-1])
    if isinstance(c, DnnJob):
        return ROW.pack(c.OP, 0, c.asset, JOB_STATUS, c.bounty, 0, tx.sender, job_account(tx.id))
    if isinstance(c, DnnClaim):
        found = jobs(c.job)
        if found is None:
            raise TypeError("claim for a job that is not indexed")  # validation refuses these
        return ROW.pack(c.OP, 0, found.asset, JOB_STATUS, found.bounty, 0, tx.sender, c.job)
    if isinstance(c, DnnReveal):
        return ROW.pack(c.OP, 0, JOB_STATUS, JOB_STATUS, 0, 0, tx.sender, c.job)
    if isinstance(c, DnnInfer):
        return ROW.pack(
            c.OP, 0, REGISTER_BASE + c.register, JOB_STATUS, c.count, 0, tx.sender, c.job
        )
    return call_row(tx.sender, c, genesis)


def failed_row(row: bytes, status: Status) -> bytes:
    """A row (same access set) that fails with ``status``."""
    acc0, acc1 = row_accounts(row)
    return ROW.pack(FAIL, 0, 0, 0, 0, int(status), acc0, acc1)


def call_row(sender: bytes, c: PublicCall, genesis: Genesis) -> bytes:
    """The replay row of a call that may also travel sealed, sent by ``sender``."""
    if isinstance(c, TransferIf):
        reg = REGISTER_BASE + c.register
        return ROW.pack(c.OP, 0, c.asset, reg, c.amount, c.equals + 1, sender, c.to)
    if isinstance(c, Transfer):
        return ROW.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, sender, c.to)
    if isinstance(c, Mint):
        return ROW.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, c.to, c.to)
    if isinstance(c, Swap):
        out = other_asset(genesis, c.pool, c.asset_in)
        return ROW.pack(c.OP, 0, c.asset_in, out, c.amount_in, c.min_out, sender, c.pool)
    raise TypeError(f"no replay row for {type(c).__name__}")  # pragma: no cover


def row_accounts(row: bytes) -> tuple[bytes, bytes]:
    """The access set (acc0, acc1) of a row."""
    return row[26:58], row[58:90]
