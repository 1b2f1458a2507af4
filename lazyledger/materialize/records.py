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

Dense ids are given in order of first appearance in global order (genesis accounts, sorted,
first), so reading the records in global order rebuilds id -> account (the replay rows'
``acc0``/``acc1``) and account -> id. ``sender`` is the dense id of the transaction's sender
(for a mint, the asset's issuer), from which nonces are counted."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import attrs
import numpy as np

from lazyledger.errors import StorageError
from lazyledger.materialize.rows import ROW_DTYPE
from lazyledger.model import Genesis
from lazyledger.shards import pack_position
from lazyledger.store import Store, read_u64, u64

_HEAD = struct.Struct("<III")
FIXED_DTYPE = np.dtype(
    [
        ("op", "u1"),
        ("flags", "u1"),
        ("asset", "<u4"),
        ("asset2", "<u4"),
        ("amount", "<i8"),
        ("min_out", "<i8"),
        ("id0", "<u4"),
        ("id1", "<u4"),
        ("sender", "<u4"),
    ]
)
_FIELDS = ("op", "flags", "asset", "asset2", "amount", "min_out", "id0", "id1")


def genesis_accounts(genesis: Genesis) -> list[bytes]:
    """The accounts holding dense ids 0, 1, ... before any block: genesis balances and pools,
    sorted."""
    return sorted(set(genesis.balances) | set(genesis.pools))


@attrs.frozen(eq=False)
class Record:
    """One decoded section record."""

    position: int
    """Packed position of the section's first transaction."""
    fixed: np.ndarray
    """FIXED_DTYPE rows (``sender`` already un-xored)."""
    txids: np.ndarray
    """u64 prefixes of the transaction ids."""
    first: int
    names: bytes
    """Accounts given dense ids ``first``, ``first + 1``, ... here (32 bytes each)."""

    def __len__(self) -> int:
        return len(self.fixed)


def encode(
    rows: Sequence[bytes],
    senders: Sequence[int],
    tx_ids: Sequence[bytes],
    first: int,
    names: Sequence[bytes],
) -> bytes:
    """The record of a section: its replay rows, senders' dense ids, transaction ids, and the
    accounts first given ids in it (dense ids ``first``...)."""
    n = len(rows)
    if not n == len(senders) == len(tx_ids):
        raise ValueError("rows, senders and tx ids differ in length")
    full = np.frombuffer(b"".join(rows), ROW_DTYPE)
    fixed = np.zeros(n, FIXED_DTYPE)
    for f in _FIELDS:
        fixed[f] = full[f]
    fixed["sender"] = np.array(senders, np.uint32) ^ full["id0"]
    planes = fixed.view(np.uint8).reshape(n, FIXED_DTYPE.itemsize).T.tobytes()
    ids = b"".join(t[:8] for t in tx_ids)
    return _HEAD.pack(n, first, len(names)) + planes + ids + b"".join(names)


def decode(position: int, data: bytes) -> Record:
    """Inverse of :func:`encode`; StorageError if the record is malformed."""
    if len(data) < _HEAD.size:
        raise StorageError(f"the section record at {position:#x} is truncated")
    n, first, k = _HEAD.unpack_from(data)
    w = FIXED_DTYPE.itemsize
    if len(data) != _HEAD.size + n * (w + 8) + 32 * k:
        raise StorageError(f"the section record at {position:#x} has a wrong length")
    planes = np.frombuffer(data, np.uint8, n * w, _HEAD.size).reshape(w, n)
    fixed = planes.T.copy().view(FIXED_DTYPE).reshape(n)
    fixed["sender"] ^= fixed["id0"]
    at = _HEAD.size + n * w
    txids = np.frombuffer(data, ">u8", n, at).astype(np.uint64)
    return Record(position, fixed, txids, first, data[at + 8 * n :])


def read(store: Store, after: int, upto: int) -> list[Record]:
    """The records of every stored section of blocks after..upto, in global order."""
    found: list[tuple[int, bytes]] = []
    for s, env in enumerate(store.shards):
        with env.read() as txn:
            cur = txn.cursor(env.db["rows"])
            if not cur.set_range(u64(after + 1)):
                continue
            for key, value in cur:
                h = read_u64(key)
                if h > upto:
                    break
                found.append((pack_position(h, s, 0), bytes(value)))
    found.sort(key=lambda x: x[0])
    return [decode(p, store.decompress(v)) for p, v in found]


def replay_rows(records: Sequence[Record], names: np.ndarray) -> np.ndarray:
    """The records' replay rows (ROW_DTYPE, in order), accounts filled in from ``names``
    (V32 by dense id)."""
    fixed = np.concatenate([r.fixed for r in records]) if records else np.zeros(0, FIXED_DTYPE)
    out = np.zeros(len(fixed), ROW_DTYPE)
    for f in _FIELDS:
        out[f] = fixed[f]
    if len(fixed) and int(max(fixed["id0"].max(), fixed["id1"].max())) >= len(names):
        raise StorageError("a section record names an account id that no record introduces")
    out["acc0"] = names[fixed["id0"]]
    out["acc1"] = names[fixed["id1"]]
    return out
