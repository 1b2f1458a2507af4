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
from lazyledger.ops import Mint, Swap, Transfer, other_asset

ROW = struct.Struct("<BBIIqq32s32s")
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
    """The replay row of a validated transaction."""
    c = tx.call
    if isinstance(c, Transfer):
        return ROW.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, tx.sender, c.to)
    if isinstance(c, Mint):
        return ROW.pack(c.OP, 0, c.asset, c.asset, c.amount, 0, c.to, c.to)
    if isinstance(c, Swap):
        out = other_asset(genesis, c.pool, c.asset_in)
        return ROW.pack(c.OP, 0, c.asset_in, out, c.amount_in, c.min_out, tx.sender, c.pool)
    raise TypeError(f"no replay row for {type(c).__name__}")


def row_accounts(row: bytes) -> tuple[bytes, bytes]:
    """The access set (acc0, acc1) of a row."""
    return row[26:58], row[58:90]
