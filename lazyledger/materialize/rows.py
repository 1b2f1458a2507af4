"""The columnar replay form of transactions, written at ingestion so that replay never decodes
a block. One fixed-size row per transaction:

    op:u8 flags:u8 asset:u32 asset2:u32 amount:i64 min_out:i64 acc0:32 acc1:32   (little-endian)

``acc0``/``acc1`` are the transaction's access set (equal for a one-account access set):
transfer (sender, to), mint (to, to), swap (sender, pool). ``asset2`` is the asset a swap pays
out (``asset`` for the other ops)."""

from __future__ import annotations

import struct

import numpy as np

from lazyledger.model import Genesis, Transaction
from lazyledger.ops import Mint, Private, Status, Swap, Transfer, other_asset

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


def row_of(tx: Transaction, genesis: Genesis) -> bytes:
    """The replay row of a validated transaction (a private one: its envelope's access set)."""
    if isinstance(tx.call, Private):
        a = tx.call.accounts
        return ROW.pack(tx.call.OP, 0, 0, 0, 0, 0, a[0], a[-1])
    return call_row(tx.sender, tx.call, genesis)


def failed_row(row: bytes, status: Status) -> bytes:
    """A row (same access set) that fails with ``status``."""
    acc0, acc1 = row_accounts(row)
    return ROW.pack(FAIL, 0, 0, 0, 0, int(status), acc0, acc1)


def call_row(sender: bytes, c: Transfer | Mint | Swap, genesis: Genesis) -> bytes:
    """The replay row of a public call sent by ``sender``."""
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
