"""The stored index record of a shard section (table ``rows``): everything the in-memory index
needs, in columns, so that building it never decodes a block and nothing is stored per
transaction under a key of its own.

Before zstd, a record is (little-endian)::

    n:u32 first:u32 k:u32
    38 byte planes of n bytes: the rows' fixed fields without their accounts
        op:u8 flags:u8 asset:u32 asset2:u32 amount:i64 min_out:i64 id0:u32 id1:u32 sender:u32
        (byte j of every row, then byte j + 1, ...; ``sender`` is stored xor ``id0``)
    n tx id prefixes: the first 8 bytes of each transaction id
    k names: the 32-byte accounts given dense ids first..first + k - 1 in this section

A chain of row width K > 2 (:mod:`lazyledger.materialize.rows`) stores ``id0 .. id{K-1}``
then ``v2 .. v{K-1}`` (i64) in place of ``id0 id1``, so 38 + 12 (K - 2) byte planes.

Dense ids are given in order of first appearance in global order (genesis accounts, sorted,
first), so reading the records in global order rebuilds id -> account (the replay rows'
``acc0``/``acc1``) and account -> id. ``sender`` is the dense id of the transaction's sender
(for a mint, the asset's issuer), from which nonces are counted."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

import attrs
import numpy as np
from numba import njit

from lazyledger.errors import StorageError
from lazyledger.materialize.rows import HEAD_FIELDS, ROW_DTYPE, row_dtype
from lazyledger.model import Genesis
from lazyledger.shards import pack_position, reader
from lazyledger.store import Store

_HEAD = struct.Struct("<III")


@functools.cache
def fixed_dtype(width: int) -> np.dtype:
    """A record's fixed fields per row, on a chain of row width ``width``."""
    return np.dtype(
        [
            *HEAD_FIELDS,
            *[(f"id{j}", "<u4") for j in range(width)],
            *[(f"v{j}", "<i8") for j in range(2, width)],
            ("sender", "<u4"),
        ]
    )


FIXED_DTYPE = fixed_dtype(2)
_HEAD_FIELDS = 26
"""Bytes of op..min_out, laid out alike in a replay row and in FIXED_DTYPE."""
assert ROW_DTYPE.fields is not None and FIXED_DTYPE.fields is not None
assert ROW_DTYPE.fields["acc0"][1] == FIXED_DTYPE.fields["id0"][1] == _HEAD_FIELDS
assert ROW_DTYPE.fields["id0"][1] == _HEAD_FIELDS + 64


@functools.cache
def _fields(width: int) -> tuple[str, ...]:
    fixed = fixed_dtype(width).names
    assert fixed is not None
    return tuple(f for f in fixed if f != "sender")


def genesis_accounts(genesis: Genesis) -> list[bytes]:
    """The accounts holding dense ids 0, 1, ... before any block: genesis balances and pools,
    sorted."""
    return sorted(set(genesis.balances) | set(genesis.pools))


@attrs.frozen(eq=False)
class Records:
    """Decoded records of consecutive sections, in global order, concatenated."""

    positions: np.ndarray
    """Packed position of each section's first transaction."""
    counts: np.ndarray
    """Transactions per section."""
    fixed: np.ndarray
    """FIXED_DTYPE rows of every section (``sender`` already un-xored)."""
    txids: np.ndarray
    """u64 prefixes of the transaction ids."""
    firsts: np.ndarray
    """The first dense id each section gives."""
    new: np.ndarray
    """Accounts each section gives ids to."""
    names: bytes
    """Those accounts (32 bytes each), section after section."""

    def __len__(self) -> int:
        return len(self.fixed)


def section(
    position: int,
    rows: Sequence[bytes],
    senders: Sequence[int],
    tx_ids: Sequence[bytes],
    first: int,
    names: Sequence[bytes],
    width: int = 2,
) -> tuple[bytes, Records]:
    """The record of a section whose first transaction sits at packed ``position``: its replay
    rows (``width`` accounts wide), senders' dense ids, transaction ids, and the accounts first
    given ids in it (dense ids ``first``...); and what :func:`decode` of it gives, built from
    the same arrays (ingestion indexes the sections it writes without decoding them)."""
    n = len(rows)
    if not n == len(senders) == len(tx_ids):
        raise ValueError("rows, senders and tx ids differ in length")
    full = np.frombuffer(b"".join(rows), row_dtype(width))
    kind = fixed_dtype(width)
    fixed = np.zeros(n, kind)
    for f in _fields(width):
        fixed[f] = full[f]
    fixed["sender"] = np.array(senders, np.uint32) ^ full["id0"]
    planes = fixed.view(np.uint8).reshape(n, kind.itemsize).T.tobytes()
    fixed["sender"] ^= full["id0"]
    ids = b"".join(t[:8] for t in tx_ids)
    joined = b"".join(names)
    record = _HEAD.pack(n, first, len(names)) + planes + ids + joined
    found = Records(
        np.array([position], np.int64),
        np.array([n], np.int64),
        fixed,
        np.frombuffer(ids, ">u8").astype(np.uint64),
        np.array([first], np.int64),
        np.array([len(names)], np.int64),
        joined,
    )
    return record, found


def concat(parts: Sequence[Records], width: int = 2) -> Records:
    """Records of consecutive sections, in global order, as one (rows ``width`` accounts wide:
    what none of them gives)."""
    if not parts:
        return decode([], width)
    return Records(
        np.concatenate([r.positions for r in parts]),
        np.concatenate([r.counts for r in parts]),
        np.concatenate([r.fixed for r in parts]),
        np.concatenate([r.txids for r in parts]),
        np.concatenate([r.firsts for r in parts]),
        np.concatenate([r.new for r in parts]),
        b"".join(r.names for r in parts),
    )


def decode(items: Sequence[tuple[int, bytes]], width: int = 2) -> Records:
    """Decode records (packed position of the section's first transaction, record before
    zstd) of consecutive sections of a chain of row width ``width``; StorageError if one is
    malformed. One pass over their concatenation, whatever the number of sections."""
    kind = fixed_dtype(width)
    w = kind.itemsize
    positions = np.array([p for p, _ in items], np.int64)
    sizes = np.array([len(d) for _, d in items], np.int64)
    buf = np.frombuffer(b"".join([d for _, d in items]), np.uint8)
    offsets = np.cumsum(sizes) - sizes
    short = np.flatnonzero(sizes < _HEAD.size)
    if len(short):
        raise StorageError(f"the section record at {int(positions[short[0]]):#x} is truncated")
    fields = buf[offsets[:, None] + np.arange(_HEAD.size)].view("<u4").astype(np.int64)
    counts, firsts, new = fields[:, 0], fields[:, 1], fields[:, 2]
    wrong = np.flatnonzero(sizes != _HEAD.size + counts * (w + 8) + 32 * new)
    if len(wrong):
        at = int(positions[wrong[0]])
        raise StorageError(f"the section record at {at:#x} has a wrong length")
    heads = np.stack([counts, firsts, new, offsets], axis=1)
    total, named = int(counts.sum()), int(new.sum())
    fixed = np.zeros((total, w), np.uint8)
    txids = np.zeros((total, 8), np.uint8)
    names = np.zeros((named, 32), np.uint8)
    _unpack(buf, heads, _HEAD.size, fixed, txids, names)
    rows = fixed.view(kind).reshape(total)
    rows["sender"] ^= rows["id0"]
    return Records(
        positions,
        counts,
        rows,
        txids.view(">u8").reshape(total).astype(np.uint64),
        firsts,
        new,
        names.tobytes(),
    )


@njit(cache=True)
def _unpack(
    buf: np.ndarray,
    heads: np.ndarray,
    head: int,
    fixed: np.ndarray,
    txids: np.ndarray,
    names: np.ndarray,
) -> None:
    """Scatter the records' byte planes into rows, and gather their id prefixes and names."""
    w = fixed.shape[1]
    row = 0
    name = 0
    for j in range(heads.shape[0]):
        n, k, at = heads[j, 0], heads[j, 2], heads[j, 3] + head
        for b in range(w):
            for i in range(n):
                fixed[row + i, b] = buf[at + b * n + i]
        at += w * n
        for i in range(n):
            for b in range(8):
                txids[row + i, b] = buf[at + 8 * i + b]
        at += 8 * n
        for i in range(k):
            for b in range(32):
                names[name + i, b] = buf[at + 32 * i + b]
        row += n
        name += k


def read(store: Store, after: int, upto: int, width: int = 2) -> Records:
    """The records of every stored section of blocks after..upto, in global order, on a chain
    of row width ``width``."""
    found = reader.records(store, after, upto)
    # (zstd in one batch: ROWS.zstd, decoded as ROWS.value, raw bytes, by decode below)
    data = store.decompress_many([v for _, _, v in found])
    items = [(pack_position(h, s, 0), d) for (h, s, _), d in zip(found, data, strict=True)]
    return decode(items, width)


def replay_rows(found: Records, names: np.ndarray) -> np.ndarray:
    """The records' replay rows (``row_dtype`` of their width, in order), accounts filled in
    from ``names`` (V32 by dense id)."""
    fixed = found.fixed
    n = len(fixed)
    assert fixed.dtype.names is not None
    width = sum(1 for f in fixed.dtype.names if f.startswith("id"))
    ids = [fixed[f"id{j}"] for j in range(width)]
    if n and int(max(c.max() for c in ids)) >= len(names):
        raise StorageError("a section record names an account id that no record introduces")
    # byte-wise: a row is the fixed fields' first 26 bytes, its accounts, its extra integers,
    # then its ids
    src = fixed.view(np.uint8).reshape(n, fixed.dtype.itemsize)
    kind = row_dtype(width)
    out = np.empty((n, kind.itemsize), np.uint8)
    out[:, :_HEAD_FIELDS] = src[:, :_HEAD_FIELDS]
    table = names.view(np.uint8).reshape(len(names), 32)
    at = _HEAD_FIELDS
    for column in ids:
        out[:, at : at + 32] = table[column]
        at += 32
    k = 4 * width
    extra = 8 * (width - 2)
    out[:, at : at + extra] = src[:, _HEAD_FIELDS + k : _HEAD_FIELDS + k + extra]
    out[:, at + extra :] = src[:, _HEAD_FIELDS : _HEAD_FIELDS + k]
    rows: np.ndarray = out.view(kind).reshape(n)
    return rows
