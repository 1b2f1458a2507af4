"""Frozen value types: Genesis, Transaction, Header, Block, AccountState, Receipt.

Canonical bytes live in :mod:`lazyledger.codec`; ids are blake3 digests of those bytes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import attrs
import blake3

from lazyledger.crypto import account_of

if TYPE_CHECKING:
    from lazyledger.shards import Position

RESERVED_ASSETS = 0xF000_0000
"""Asset ids from here up are contract storage, not assets: genesis may not issue them."""
REGISTER_BASE = 0xFFFE_0000
MAX_REGISTER = 0xFFFF
"""Storage keys REGISTER_BASE + r hold inference results (class id + 1; 0 means empty)."""


class Call(Protocol):
    """The operation and arguments a transaction carries (declared by an ``ops.OpSpec``).
    A call whose access set depends on its transaction's id also has
    ``access_of_tx(sender, tx_id)``."""

    @property
    def OP(self) -> int: ...

    def pack(self) -> bytes: ...

    def access(self, sender: bytes) -> tuple[bytes, ...]: ...

    def check(self, genesis: Genesis, sender: bytes) -> None: ...


def job_account(job_tx_id: bytes) -> bytes:
    """The account that escrows a DNN job's bounty and records its result."""
    return blake3.blake3(
        job_tx_id, derive_key_context="lazyledger 2026 dnn job account v1"
    ).digest()


DEFAULT_MAX_BLOB_BYTES = 256 << 20
"""Genesis default for ``max_blob_bytes``: room for a verdict-rule-2 model of 2**27 int8
parameters."""


def _keys(items: Iterable[bytes]) -> list[bytes]:
    return [bytes(k) for k in items]


def _assets(items: Mapping[int, bytes]) -> dict[int, bytes]:
    return dict(items)


def _balances(items: Mapping[bytes, Mapping[int, int]]) -> dict[bytes, dict[int, int]]:
    return {bytes(k): dict(v) for k, v in items.items()}


def _pools(items: Mapping[bytes, tuple[int, int]]) -> dict[bytes, tuple[int, int]]:
    return {bytes(k): (int(v[0]), int(v[1])) for k, v in items.items()}


def _roots(items: Iterable[bytes]) -> tuple[bytes, ...]:
    return tuple(items)


def _counts(items: Iterable[int]) -> tuple[int, ...]:
    return tuple(items)


def _declared(items: Iterable[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
    return tuple(sorted((int(code), bytes(digest)) for code, digest in items))


def _sections(
    items: Iterable[Iterable[Transaction]],
) -> tuple[tuple[Transaction, ...], ...]:
    return tuple(tuple(s) for s in items)


@attrs.frozen(slots=True)
class Genesis:
    """Chain parameters and the state before block 1.

    ``authorities`` are the Ed25519 public keys allowed to propose blocks; ``assets`` maps an asset
    id to its issuer's account; ``balances`` holds initial balances; ``pools`` maps a pool account
    to its pair of assets (its genesis balances are its reserves); ``max_blob_bytes`` bounds the
    size of every blob a transaction references."""

    chain_id: str
    n_shards: int
    authorities: list[bytes] = attrs.field(factory=list, converter=_keys)
    assets: dict[int, bytes] = attrs.field(factory=dict, converter=_assets)
    balances: dict[bytes, dict[int, int]] = attrs.field(factory=dict, converter=_balances)
    pools: dict[bytes, tuple[int, int]] = attrs.field(factory=dict, converter=_pools)
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    """The largest blob (spec, dataset, weights) a transaction may reference: a block naming a
    larger one is invalid, and ``put_blob`` refuses it."""
    ops: tuple[tuple[int, bytes], ...] = attrs.field(default=(), converter=_declared)
    """The embedder-defined operations this chain runs, as (code, definition hash) pairs
    (``OpSpec.declared``), sorted by code; a ledger opens only with exactly these ops."""

    def to_bytes(self) -> bytes:
        from lazyledger.codec import encode_genesis

        return encode_genesis(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        from lazyledger.codec import decode_genesis

        return decode_genesis(data)

    @property
    def id(self) -> bytes:
        """The genesis hash: the parent of block 1."""
        return blake3.blake3(self.to_bytes()).digest()


@attrs.frozen(slots=True)
class Transaction:
    """A signed transaction: who sends, which nonce, which operation. ``raw`` and ``id`` are its
    canonical bytes and their blake3 digest; ``sender`` is the sender's account id."""

    chain_id: str
    public_key: bytes
    nonce: int
    call: Call
    signature: bytes = attrs.field(repr=lambda s: s.hex()[:16])
    raw: bytes = attrs.field(default=b"", eq=False, repr=False)
    id: bytes = attrs.field(init=False, eq=False, repr=False)
    sender: bytes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.raw:
            from lazyledger.codec import encode_transaction

            object.__setattr__(self, "raw", encode_transaction(self))
        object.__setattr__(self, "id", blake3.blake3(self.raw).digest())
        object.__setattr__(self, "sender", account_of(self.public_key))

    @property
    def body(self) -> bytes:
        """The signed part of the canonical bytes (everything but the signature)."""
        return self.raw[:-64]

    def access(self) -> tuple[bytes, ...]:
        """Accounts this transaction may read or write."""
        by_id = getattr(self.call, "access_of_tx", None)
        if by_id is not None:
            return by_id(self.sender, self.id)  # type: ignore[no-any-return]
        return self.call.access(self.sender)

    def to_bytes(self) -> bytes:
        return self.raw

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        from lazyledger.codec import decode_transaction

        return decode_transaction(data)


@attrs.frozen(slots=True)
class Header:
    """A block header: it commits to one blake3 Merkle root per shard section and to every
    account's touch list (``touch_root``)."""

    chain_id: str
    height: int
    parent: bytes
    shard_roots: tuple[bytes, ...] = attrs.field(converter=_roots)
    shard_counts: tuple[int, ...] = attrs.field(converter=_counts)
    proposer: bytes
    signature: bytes = attrs.field(default=b"", repr=lambda s: s.hex()[:16])
    time_ms: int = 0
    """The proposer's clock (Unix milliseconds), never below the parent's. Nothing derived
    from the chain depends on it; it is only information for users."""
    touch_root: bytes = bytes(32)
    """The touch commitment after this block (:mod:`lazyledger.touches`); ``propose`` fills it
    in and validation recomputes it."""

    @property
    def body(self) -> bytes:
        from lazyledger.codec import encode_header_body

        return encode_header_body(self)

    def to_bytes(self) -> bytes:
        return self.body + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        from lazyledger.codec import decode_header

        return decode_header(data)

    @property
    def id(self) -> bytes:
        """The block hash."""
        return blake3.blake3(self.to_bytes()).digest()


@attrs.frozen(slots=True)
class Block:
    """A header and one section of transactions per shard, in shard order."""

    header: Header
    sections: tuple[tuple[Transaction, ...], ...] = attrs.field(converter=_sections)

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def id(self) -> bytes:
        return self.header.id

    def transactions(self) -> list[tuple[Position, Transaction]]:
        """Every transaction with its position, in global order."""
        h = self.header.height
        return [((h, s, i), tx) for s, sec in enumerate(self.sections) for i, tx in enumerate(sec)]

    def to_bytes(self) -> bytes:
        from lazyledger.codec import encode_block

        return encode_block(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        from lazyledger.codec import decode_block

        return decode_block(data)


@attrs.frozen(slots=True)
class AccountState:
    """A materialised account: its nonce (transactions sent), its non-zero balances, and its
    non-zero contract storage (job status, inference registers; see ``RESERVED_ASSETS``)."""

    nonce: int
    balances: dict[int, int] = attrs.field(factory=dict)
    storage: dict[int, int] = attrs.field(factory=dict)

    @property
    def registers(self) -> dict[int, int]:
        """Inference results by register number: the class id ``dnn_infer`` wrote there
        (registers never written are absent). Read from ``storage``, where register ``r`` is
        key ``REGISTER_BASE + r`` holding the class id + 1."""
        return {
            key - REGISTER_BASE: value - 1
            for key, value in sorted(self.storage.items())
            if REGISTER_BASE <= key <= REGISTER_BASE + MAX_REGISTER and value > 0
        }

    @classmethod
    def split(cls, nonce: int, held: dict[int, int]) -> AccountState:
        """From holdings keyed by asset id, reserved keys going to ``storage``."""
        if max(held, default=0) < RESERVED_ASSETS:  # (the common case: no storage keys)
            return cls(nonce, dict(held), {})
        return cls(
            nonce,
            {a: v for a, v in held.items() if a < RESERVED_ASSETS},
            {a: v for a, v in held.items() if a >= RESERVED_ASSETS},
        )


@attrs.frozen(slots=True)
class Receipt:
    """What happened to one transaction at materialisation (``reason`` is empty if it
    applied). ``position`` says where it is; it takes no part in equality."""

    applied: bool
    reason: str
    position: tuple[int, int, int] | None = attrs.field(default=None, eq=False)
