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

from lazyledger.errors import InvalidOpSpec
from lazyledger.model import Genesis, Transaction
from lazyledger.ops import REGISTRY, Context, Status
from lazyledger.ops.base import FAIL, ROW_BODY
from lazyledger.ops.dnn import JobLookup
from lazyledger.ops.private import failed_body
from lazyledger.ops.registry import BUILTIN_CODES

__all__ = ["FAIL", "ROW", "ROW_DTYPE", "JobLookup", "call_row", "failed_row", "row_of"]

_IDS = struct.Struct("<II")
ROW = struct.Struct("<BBIIqq32s32sII")
assert ROW.size == ROW_BODY.size + _IDS.size

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


AccountIds = Callable[[bytes], int]
"""An account's dense id."""


def row_of(tx: Transaction, genesis: Genesis, jobs: JobLookup, ids: AccountIds) -> bytes:
    """The replay row of a validated transaction (a private one: its envelope's access set)."""
    return _with_ids(_body_of(tx, genesis, jobs), ids)


def _with_ids(body: bytes, ids: AccountIds) -> bytes:
    return body + _IDS.pack(ids(body[26:58]), ids(body[58:90]))


def _body_of(tx: Transaction, genesis: Genesis, jobs: JobLookup) -> bytes:
    body = REGISTRY.row_body(Context(genesis, tx.sender, tx.id, jobs=jobs), tx.call)
    if tx.call.OP not in BUILTIN_CODES:
        # nonces and the sender index read a row's first account as its sender; slices and
        # touch commitments read the row's accounts as the access set
        if body[26:58] != tx.sender:
            raise InvalidOpSpec(f"op {tx.call.OP}: its replay row must name the sender as acc0")
        if {body[26:58], body[58:90]} != set(tx.access()):
            raise InvalidOpSpec(f"op {tx.call.OP}: its replay row must name its access set")
    return body


def failed_row(row: bytes, status: Status) -> bytes:
    """A row (same access set and ids) that fails with ``status``."""
    acc0, acc1 = row_accounts(row)
    return failed_body(status, acc0, acc1) + row[90:98]


def call_row(sender: bytes, c: object, genesis: Genesis, ids: AccountIds) -> bytes:
    """The replay row of a call that may also travel sealed, sent by ``sender``."""
    return _with_ids(REGISTRY.row_body(Context(genesis, sender), c), ids)


def row_ids(row: bytes) -> dict[bytes, int]:
    """Account -> dense id, for the accounts of a row."""
    id0, id1 = _IDS.unpack_from(row, 90)
    return {row[26:58]: id0, row[58:90]: id1}


def row_accounts(row: bytes) -> tuple[bytes, bytes]:
    """The access set (acc0, acc1) of a row."""
    return row[26:58], row[58:90]
