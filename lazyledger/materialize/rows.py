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
first appearance), so replay indexes balances by integer instead of hashing 32-byte ids.

A chain whose genesis declares an op wider than two accounts (``OpSpec.width``, up to 8) has
rows of its widest op's width ``K``: ``acc0 .. acc{K-1}``, then integers ``v2 .. v{K-1}``
(i64), then ``id0 .. id{K-1}`` (10 + 44K bytes). A narrower row repeats ``acc0`` in its extra
account columns and holds 0 in its extra integers. Built-in chains keep the 98-byte row."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

import numpy as np

from lazyledger.errors import InvalidOpSpec
from lazyledger.model import Genesis, Transaction
from lazyledger.ops import REGISTRY, Context, Status
from lazyledger.ops.base import FAIL, MAX_WIDTH, ROW_BODY, body_size
from lazyledger.ops.dnn import JobLookup
from lazyledger.ops.private import failed_body
from lazyledger.ops.registry import BUILTIN_CODES

__all__ = [
    "FAIL",
    "ROW",
    "ROW_DTYPE",
    "JobLookup",
    "call_row",
    "failed_row",
    "id_matrix",
    "row_dtype",
    "row_of",
    "width_of",
    "with_ids",
]

_IDS = struct.Struct("<II")
ROW = struct.Struct("<BBIIqq32s32sII")
assert ROW.size == ROW_BODY.size + _IDS.size
_ACC = 26
"""Offset of ``acc0`` in a row."""
HEAD_FIELDS = [
    ("op", "u1"),
    ("flags", "u1"),
    ("asset", "<u4"),
    ("asset2", "<u4"),
    ("amount", "<i8"),
    ("min_out", "<i8"),
]
"""A row's fields before its accounts (26 bytes; a section record's too)."""


@functools.cache
def row_dtype(width: int) -> np.dtype:
    """The replay row of a chain whose rows name ``width`` accounts (2..8)."""
    if not 2 <= width <= MAX_WIDTH:
        raise ValueError(f"row width {width} outside 2..{MAX_WIDTH}")
    return np.dtype(
        [
            *HEAD_FIELDS,
            *[(f"acc{j}", "V32") for j in range(width)],
            *[(f"v{j}", "<i8") for j in range(2, width)],
            *[(f"id{j}", "<u4") for j in range(width)],
        ]
    )


ROW_DTYPE = row_dtype(2)
assert ROW_DTYPE.itemsize == ROW.size


def width_of(rows: np.ndarray) -> int:
    """Accounts per row of a row array."""
    assert rows.dtype.names is not None
    return sum(1 for name in rows.dtype.names if name.startswith("id"))


def width_of_row(row: bytes) -> int:
    """Accounts per row of one row's bytes (its length says)."""
    width, rest = divmod(len(row) - 10, 44)
    if rest or not 2 <= width <= MAX_WIDTH:
        raise ValueError(f"{len(row)} bytes is no replay row")
    return width


def id_matrix(rows: np.ndarray) -> np.ndarray:
    """The rows' dense ids, one row of ``width_of(rows)`` columns each (int64)."""
    width = width_of(rows)
    out = np.empty((len(rows), width), np.int64)
    for j in range(width):
        out[:, j] = rows[f"id{j}"]
    return out


AccountIds = Callable[[bytes], int]
"""An account's dense id."""


def row_of(
    tx: Transaction, genesis: Genesis, jobs: JobLookup, ids: AccountIds, width: int = 2
) -> bytes:
    """The replay row of a validated transaction (a private one: its envelope's access set),
    ``width`` accounts wide (the chain's)."""
    return with_ids(_body_of(tx, genesis, jobs), ids, width)


def _accounts_of_body(body: bytes) -> list[bytes]:
    w = (len(body) - 10) // 40
    tail = ROW_BODY.size
    extra = [body[tail + 32 * j : tail + 32 * j + 32] for j in range(w - 2)]
    return [body[_ACC : _ACC + 32], body[_ACC + 32 : _ACC + 64], *extra]


def with_ids(body: bytes, ids: AccountIds, width: int) -> bytes:
    """A row of ``width`` accounts from a body naming ``w <= width`` (the rest repeat acc0,
    their integers 0), with every account's dense id."""
    if width == 2 and len(body) == ROW_BODY.size:  # (the common case)
        return body + _IDS.pack(ids(body[_ACC : _ACC + 32]), ids(body[_ACC + 32 : _ACC + 64]))
    accounts = _accounts_of_body(body)
    w = len(accounts)
    if w > width:
        raise InvalidOpSpec(f"op {body[0]}: a width-{w} row on a chain of width {width}")
    accounts += [accounts[0]] * (width - w)
    ints = body[ROW_BODY.size + 32 * (w - 2) :] + bytes(8 * (width - w))
    head = body[: ROW_BODY.size]
    return (
        head
        + b"".join(accounts[2:])
        + ints
        + struct.pack(f"<{width}I", *[ids(a) for a in accounts])
    )


def _body_of(tx: Transaction, genesis: Genesis, jobs: JobLookup) -> bytes:
    body = REGISTRY.row_body(Context(genesis, tx.sender, tx.id, jobs=jobs), tx.call)
    if tx.call.OP not in BUILTIN_CODES:
        # nonces and the sender index read a row's first account as its sender; slices and
        # touch commitments read the row's accounts as the access set
        accounts = _accounts_of_body(body)
        if accounts[0] != tx.sender:
            raise InvalidOpSpec(f"op {tx.call.OP}: its replay row must name the sender as acc0")
        if set(accounts) != set(tx.access()):
            raise InvalidOpSpec(f"op {tx.call.OP}: its replay row must name its access set")
    return body


def failed_row(row: bytes, status: Status) -> bytes:
    """A row (same width, access set and ids) that fails with ``status``."""
    width = width_of_row(row)
    accounts = row_accounts(row)
    body = failed_body(status, accounts[0], accounts[1])
    if width == 2:
        return body + row[90:98]
    ints = bytes(8 * (width - 2))
    return body + b"".join(accounts[2:]) + ints + row[body_size(width) :]


def call_row(sender: bytes, c: object, genesis: Genesis, ids: AccountIds, width: int = 2) -> bytes:
    """The replay row (``width`` accounts wide) of a call that may also travel sealed, sent by
    ``sender``."""
    return with_ids(REGISTRY.row_body(Context(genesis, sender), c), ids, width)


def row_ids(row: bytes) -> dict[bytes, int]:
    """Account -> dense id, for the accounts of a row."""
    width = width_of_row(row)
    found = struct.unpack_from(f"<{width}I", row, body_size(width))
    return dict(zip(row_accounts(row), found, strict=True))


def row_accounts(row: bytes) -> tuple[bytes, ...]:
    """The accounts (acc0, acc1, ...) of a row, as its columns name them (repeats included)."""
    width = width_of_row(row)
    return tuple(row[_ACC + 32 * j : _ACC + 32 * j + 32] for j in range(width))
