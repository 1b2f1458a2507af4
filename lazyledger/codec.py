"""Canonical, versioned byte encodings. Every integer is big-endian and fixed-width, every
collection is length-prefixed and (where order is free) sorted, so equal values encode equally.

transaction = "LLT" v:u8 | chain_id:u8-len str (may be empty) | public_key:32 | nonce:u64
              | op:u8 | args:u16-len
              | signature:64                     (the signed body is everything but the signature)
header      = "LLH" v:u8 | chain_id | height:u64 | time_ms:u64 | parent:32 | touch_root:32 | n:u16
              | n x (root:32 count:u32)
              | proposer:32 | signature:64
section     = count:u32 | count x (len:u32 transaction)
block       = "LLB" v:u8 | header:u32-len | n x section
genesis     = "LLG" v:u8 | chain_id | n_shards:u16 | max_blob_bytes:u64 | authorities:u16-len x 32
              | assets:u32-len x (id:u32 issuer:32) | pools:u32-len x (pool:32 a:u32 b:u32)
              | balances:u32-len x (account:32 k:u16 x (asset:u32 amount:u64))
              [v3 only: | ops:u16-len x (code:u8 definition:32)]  sorted by code
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from lazyledger.errors import InvalidBlock, InvalidGenesis, InvalidTransaction, LedgerError
from lazyledger.model import Block, Call, Genesis, Header, Transaction

CallDecoder = Callable[[int, bytes], Call]
_DECODERS: list[CallDecoder] = []


def set_call_decoder(decoder: CallDecoder) -> None:
    """Install what turns ``op, args`` into a call: the op registry (:mod:`lazyledger.ops`)
    installs itself on import, so this layer names no operation."""
    _DECODERS[:] = [decoder]


def unpack_call(op: int, data: bytes) -> Call:
    if not _DECODERS:
        raise InvalidTransaction("no operation registry is loaded (import lazyledger.ops)")
    return _DECODERS[0](op, data)


VERSION = 1
MAX_CHAIN_ID = 64
MAX_ARGS = 4096
MAX_TX_BYTES = 4 + 1 + MAX_CHAIN_ID + 32 + 8 + 1 + 2 + MAX_ARGS + 64
MAX_BLOCK_TXS = 250_000
MAX_BLOCK_BYTES = 64 << 20

TX_MAGIC = b"LLT" + bytes([VERSION])
HEADER_VERSION = 3
"""Headers are at version 2 (version 1 had no timestamp)."""
HEADER_MAGIC = b"LLH" + bytes([HEADER_VERSION])
BLOCK_MAGIC = b"LLB" + bytes([VERSION])
GENESIS_VERSION = 2
"""Genesis is at version 2 (version 1 had no ``max_blob_bytes``); a chain that declares
embedder-defined ops encodes it at version 3, which appends them."""
GENESIS_MAGIC = b"LLG" + bytes([GENESIS_VERSION])
GENESIS_OPS_MAGIC = b"LLG" + bytes([GENESIS_VERSION + 1])

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TX_MID = struct.Struct(">32sQBH")  # public key, nonce, op, args length
_ROOT = struct.Struct(">32sI")


def _chain_id_bytes(chain_id: str, err: type[LedgerError], low: int = 1) -> bytes:
    raw = chain_id.encode("utf-8")
    if not low <= len(raw) <= MAX_CHAIN_ID:
        raise err(f"chain id must be {low}..{MAX_CHAIN_ID} UTF-8 bytes, got {len(raw)}")
    return bytes([len(raw)]) + raw


def _read_chain_id(data: bytes, at: int, err: type[LedgerError], low: int = 1) -> tuple[str, int]:
    if at >= len(data):
        raise err("truncated before chain id")
    n = data[at]
    if n < low or n > MAX_CHAIN_ID or at + 1 + n > len(data):
        raise err("bad chain id length")
    try:
        return data[at + 1 : at + 1 + n].decode("utf-8"), at + 1 + n
    except UnicodeDecodeError:
        raise err("chain id is not UTF-8") from None


# -- transactions ---------------------------------------------------------------------------


def encode_transaction(tx: Transaction) -> bytes:
    if len(tx.public_key) != 32:
        raise InvalidTransaction(f"public key must be 32 bytes, got {len(tx.public_key)}")
    if not 0 <= tx.nonce < 2**64:
        raise InvalidTransaction(f"nonce {tx.nonce} outside 0..2**64-1")
    if len(tx.signature) not in (0, 64):
        raise InvalidTransaction(f"signature must be 64 bytes, got {len(tx.signature)}")
    try:
        args = tx.call.pack()
    except struct.error as e:
        raise InvalidTransaction(
            f"{type(tx.call).__name__.lower()} arguments out of range: {e}"
        ) from None
    return b"".join(
        (
            TX_MAGIC,
            _chain_id_bytes(tx.chain_id, InvalidTransaction, 0),
            _TX_MID.pack(tx.public_key, tx.nonce, tx.call.OP, len(args)),
            args,
            tx.signature or bytes(64),
        )
    )


def decode_transaction(data: bytes) -> Transaction:
    """Decode canonical transaction bytes; any deviation raises InvalidTransaction."""
    data = bytes(data)
    if len(data) > MAX_TX_BYTES:
        raise InvalidTransaction(f"transaction is {len(data)} bytes, limit {MAX_TX_BYTES}")
    if data[:4] != TX_MAGIC:
        raise InvalidTransaction("not a version-1 transaction (bad magic)")
    chain_id, at = _read_chain_id(data, 4, InvalidTransaction, 0)
    if at + _TX_MID.size > len(data):
        raise InvalidTransaction("truncated transaction")
    pk, nonce, op, n_args = _TX_MID.unpack_from(data, at)
    at += _TX_MID.size
    if at + n_args + 64 != len(data):
        raise InvalidTransaction(
            f"transaction length {len(data)} does not match its argument length {n_args}"
        )
    call = unpack_call(op, data[at : at + n_args])
    return Transaction(chain_id, pk, nonce, call, data[-64:], data)


# -- headers and blocks ---------------------------------------------------------------------


def encode_header_body(h: Header) -> bytes:
    n = len(h.shard_roots)
    if n != len(h.shard_counts) or not 0 < n < 2**16:
        raise InvalidBlock("header needs one root and one count per shard")
    if len(h.parent) != 32 or len(h.proposer) != 32 or len(h.touch_root) != 32:
        raise InvalidBlock("parent hash, touch root and proposer key must be 32 bytes")
    if not 0 <= h.height < 2**63:
        raise InvalidBlock(f"height {h.height} out of range")
    if not isinstance(h.time_ms, int) or not 0 <= h.time_ms < 2**63:
        raise InvalidBlock(f"block time {h.time_ms!r} out of range")
    return b"".join(
        (
            HEADER_MAGIC,
            _chain_id_bytes(h.chain_id, InvalidBlock),
            h.height.to_bytes(8, "big"),
            h.time_ms.to_bytes(8, "big"),
            h.parent,
            h.touch_root,
            _U16.pack(n),
            *(_ROOT.pack(r, c) for r, c in zip(h.shard_roots, h.shard_counts, strict=True)),
            h.proposer,
        )
    )


def decode_header(data: bytes) -> Header:
    data = bytes(data)
    if data[:4] != HEADER_MAGIC:
        raise InvalidBlock(f"not a version-{HEADER_VERSION} header (bad magic)")
    chain_id, at = _read_chain_id(data, 4, InvalidBlock)
    if at + 8 + 8 + 32 + 32 + 2 > len(data):
        raise InvalidBlock("truncated header")
    height = int.from_bytes(data[at : at + 8], "big")
    if height >= 2**63:
        raise InvalidBlock(f"height {height} out of range (at most 2**63-1)")
    time_ms = int.from_bytes(data[at + 8 : at + 16], "big")
    if time_ms >= 2**63:
        raise InvalidBlock(f"block time {time_ms} out of range (at most 2**63-1)")
    at += 8
    parent = data[at + 8 : at + 40]
    touch_root = data[at + 40 : at + 72]
    (n,) = _U16.unpack_from(data, at + 72)
    at += 74
    if n == 0 or at + n * _ROOT.size + 32 + 64 != len(data):
        raise InvalidBlock(f"header length {len(data)} does not fit {n} shards")
    roots, counts = [], []
    for _ in range(n):
        r, c = _ROOT.unpack_from(data, at)
        roots.append(r)
        counts.append(c)
        at += _ROOT.size
    return Header(
        chain_id,
        height,
        parent,
        tuple(roots),
        tuple(counts),
        data[at : at + 32],
        data[at + 32 :],
        time_ms,
        touch_root,
    )


def encode_section(txs: Sequence[Transaction]) -> bytes:
    parts = [_U32.pack(len(txs))]
    for tx in txs:
        parts.append(_U32.pack(len(tx.raw)))
        parts.append(tx.raw)
    return b"".join(parts)


def section_item(data: bytes, index: int) -> bytes:
    """The canonical bytes of transaction ``index`` of an encoded section, found by its length
    prefixes alone (nothing decoded); InvalidBlock if the section has no such transaction."""
    if len(data) < 4 or not 0 <= index < _U32.unpack_from(data, 0)[0]:
        raise InvalidBlock(f"the section has no transaction {index}")
    at = 4
    for _ in range(index):
        if at + 4 > len(data):
            raise InvalidBlock("truncated section")
        at += 4 + _U32.unpack_from(data, at)[0]
    if at + 4 > len(data):
        raise InvalidBlock("truncated section")
    (n,) = _U32.unpack_from(data, at)
    if at + 4 + n > len(data):
        raise InvalidBlock("truncated section")
    return data[at + 4 : at + 4 + n]


def decode_section(data: bytes, at: int, shard: int) -> tuple[list[Transaction], int]:
    """Decode one section starting at ``at``; returns the transactions and the end offset."""
    if at + 4 > len(data):
        raise InvalidBlock(f"truncated before section {shard}")
    (count,) = _U32.unpack_from(data, at)
    at += 4
    if count > MAX_BLOCK_TXS:
        raise InvalidBlock(f"section {shard} claims {count} transactions, limit {MAX_BLOCK_TXS}")
    txs = []
    unpack = _U32.unpack_from
    end = len(data)
    for i in range(count):
        if at + 4 > end:
            raise InvalidBlock(f"section {shard} truncated at transaction {i}")
        (n,) = unpack(data, at)
        at += 4
        if at + n > end:
            raise InvalidBlock(f"section {shard} truncated at transaction {i}")
        try:
            txs.append(decode_transaction(data[at : at + n]))
        except InvalidTransaction as e:
            raise InvalidBlock(f"section {shard}, transaction {i}: {e}") from None
        at += n
    return txs, at


def encode_block(block: Block) -> bytes:
    header = block.header.to_bytes()
    return b"".join(
        (BLOCK_MAGIC, _U32.pack(len(header)), header, *(encode_section(s) for s in block.sections))
    )


def decode_block(data: bytes) -> Block:
    """Decode canonical block bytes; any deviation raises InvalidBlock."""
    data = bytes(data)
    if len(data) > MAX_BLOCK_BYTES:
        raise InvalidBlock(f"block is {len(data)} bytes, limit {MAX_BLOCK_BYTES}")
    if data[:4] != BLOCK_MAGIC:
        raise InvalidBlock("not a version-1 block (bad magic)")
    if len(data) < 8:
        raise InvalidBlock("truncated block")
    (n,) = _U32.unpack_from(data, 4)
    if 8 + n > len(data):
        raise InvalidBlock("truncated block header")
    header = decode_header(data[8 : 8 + n])
    at = 8 + n
    sections = []
    for s in range(len(header.shard_roots)):
        txs, at = decode_section(data, at, s)
        sections.append(tuple(txs))
    if at != len(data):
        raise InvalidBlock(f"{len(data) - at} trailing bytes after the last section")
    return Block(header, tuple(sections))


# -- genesis --------------------------------------------------------------------------------


def encode_genesis(g: Genesis) -> bytes:
    try:
        magic = GENESIS_OPS_MAGIC if g.ops else GENESIS_MAGIC
        parts = [magic, _chain_id_bytes(g.chain_id, InvalidGenesis), _U16.pack(g.n_shards)]
        parts.append(_U64.pack(g.max_blob_bytes))
        parts.append(_U16.pack(len(g.authorities)))
        parts.extend(g.authorities)
        parts.append(_U32.pack(len(g.assets)))
        parts.extend(struct.pack(">I32s", a, g.assets[a]) for a in sorted(g.assets))
        parts.append(_U32.pack(len(g.pools)))
        parts.extend(struct.pack(">32sII", p, *g.pools[p]) for p in sorted(g.pools))
        parts.append(_U32.pack(len(g.balances)))
        for acc in sorted(g.balances):
            held = g.balances[acc]
            parts.append(acc + _U16.pack(len(held)))
            parts.extend(struct.pack(">IQ", a, held[a]) for a in sorted(held))
        if g.ops:
            parts.append(_U16.pack(len(g.ops)))
            for code, digest in g.ops:
                if len(digest) != 32:
                    raise InvalidGenesis(f"op {code}: its definition hash is not 32 bytes")
                parts.append(bytes([code]) + digest)
    except (struct.error, TypeError, AttributeError, ValueError) as e:
        raise InvalidGenesis(f"genesis field out of range: {e}") from None
    return b"".join(parts)


def decode_genesis(data: bytes) -> Genesis:
    data = bytes(data)
    if data[:4] not in (GENESIS_MAGIC, GENESIS_OPS_MAGIC):
        raise InvalidGenesis(f"not a version-{GENESIS_VERSION} or -3 genesis (bad magic)")
    try:
        chain_id, at = _read_chain_id(data, 4, InvalidGenesis)
        (n_shards,) = _U16.unpack_from(data, at)
        (max_blob_bytes,) = _U64.unpack_from(data, at + 2)
        (n,) = _U16.unpack_from(data, at + 10)
        at += 12
        authorities = [data[at + 32 * i : at + 32 * (i + 1)] for i in range(n)]
        at += 32 * n
        (n,) = _U32.unpack_from(data, at)
        at += 4
        assets = {}
        for _ in range(n):
            a, issuer = struct.unpack_from(">I32s", data, at)
            assets[a] = issuer
            at += 36
        (n,) = _U32.unpack_from(data, at)
        at += 4
        pools = {}
        for _ in range(n):
            p, x, y = struct.unpack_from(">32sII", data, at)
            pools[p] = (x, y)
            at += 40
        (n,) = _U32.unpack_from(data, at)
        at += 4
        balances = {}
        for _ in range(n):
            acc = data[at : at + 32]
            (k,) = _U16.unpack_from(data, at + 32)
            at += 34
            held = {}
            for _ in range(k):
                a, v = struct.unpack_from(">IQ", data, at)
                held[a] = v
                at += 12
            balances[acc] = held
        ops = []
        if data[:4] == GENESIS_OPS_MAGIC:
            (n,) = _U16.unpack_from(data, at)
            at += 2
            for _ in range(n):
                if at + 33 > len(data):
                    raise struct.error
                ops.append((data[at], data[at + 1 : at + 33]))
                at += 33
    except struct.error:
        raise InvalidGenesis("truncated genesis") from None
    if at != len(data):
        raise InvalidGenesis(f"{len(data) - at} trailing bytes after genesis")
    g = Genesis(chain_id, n_shards, authorities, assets, balances, pools, max_blob_bytes, ops)
    if encode_genesis(g) != data:
        raise InvalidGenesis("genesis bytes are not canonical")
    return g
