"""The operation registry: codes, argument layouts, access sets, stateless checks, and the
pure-Python semantics that every fast path (the Numba kernel) is tested against.

Amounts and balances are integers in ``[0, MAX]``. A failing operation changes no balance."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from lazyledger.errors import InvalidTransaction

if TYPE_CHECKING:
    from lazyledger.model import Genesis

MAX = 2**63 - 1

Balances = dict[tuple[bytes, int], int]
"""Pure-Python state: (account, asset) -> balance; a missing key is a zero balance."""


class Op(IntEnum):
    """Operation codes as they appear in canonical transaction bytes and replay rows."""

    TRANSFER = 1
    MINT = 2
    SWAP = 3
    PRIVATE = 64


class Status(IntEnum):
    """Outcome of one transaction at materialisation; 0 is applied, the rest are failures."""

    APPLIED = 0
    INSUFFICIENT_BALANCE = 1
    BALANCE_OVERFLOW = 2
    SWAP_NO_OUTPUT = 3
    SWAP_DRAINS_POOL = 4
    SWAP_BELOW_MIN_OUT = 5
    PRIVATE_INVALID = 6
    PRIVATE_ACCESS = 7


REASONS: dict[int, str] = {
    Status.APPLIED: "",
    Status.INSUFFICIENT_BALANCE: "insufficient balance",
    Status.BALANCE_OVERFLOW: "a balance would exceed MAX",
    Status.SWAP_NO_OUTPUT: "swap output rounds to zero",
    Status.SWAP_DRAINS_POOL: "swap output would drain the pool reserve",
    Status.SWAP_BELOW_MIN_OUT: "swap output below min_out",
    Status.PRIVATE_INVALID: "the private call is invalid",
    Status.PRIVATE_ACCESS: "the private call exceeds its declared access set",
}

_U32 = 2**32


class Call(Protocol):
    """The operation and arguments a transaction carries."""

    OP: ClassVar[Op]

    def pack(self) -> bytes: ...

    def access(self, sender: bytes) -> tuple[bytes, ...]: ...

    def check(self, genesis: Genesis, sender: bytes) -> None: ...


def _check_amount(name: str, value: int) -> None:
    if not 0 < value <= MAX:
        raise InvalidTransaction(f"{name} {value} outside 1..{MAX}")


def _check_asset(genesis: Genesis, asset: int) -> None:
    if asset not in genesis.assets:
        raise InvalidTransaction(f"unknown asset {asset}")


def _fields(layout: struct.Struct, name: str, data: bytes) -> tuple[Any, ...]:
    if len(data) != layout.size:
        raise InvalidTransaction(f"{name} arguments are {len(data)} bytes, expected {layout.size}")
    return layout.unpack(data)


def _check_account(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise InvalidTransaction(f"{name} must be a 32-byte account id, got {len(value)} bytes")


@attrs.frozen(slots=True)
class Transfer:
    """Move ``amount`` of ``asset`` from the sender to ``to``. Access {sender, to}."""

    to: bytes
    asset: int
    amount: int
    OP: ClassVar[Op] = Op.TRANSFER
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQ")

    def pack(self) -> bytes:
        return self.LAYOUT.pack(self.to, self.asset, self.amount)

    @classmethod
    def unpack(cls, data: bytes) -> Transfer:
        return cls(*_fields(cls.LAYOUT, "transfer", data))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender,) if self.to == sender else (sender, self.to)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("to", self.to)
        _check_asset(genesis, self.asset)
        _check_amount("amount", self.amount)


@attrs.frozen(slots=True)
class Mint:
    """Create ``amount`` of ``asset`` in ``to``; only its issuer may send this. Access {to}."""

    to: bytes
    asset: int
    amount: int
    OP: ClassVar[Op] = Op.MINT
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQ")

    def pack(self) -> bytes:
        return self.LAYOUT.pack(self.to, self.asset, self.amount)

    @classmethod
    def unpack(cls, data: bytes) -> Mint:
        return cls(*_fields(cls.LAYOUT, "mint", data))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (self.to,)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("to", self.to)
        _check_asset(genesis, self.asset)
        _check_amount("amount", self.amount)
        if genesis.assets[self.asset] != sender:
            raise InvalidTransaction(
                f"mint of asset {self.asset} by a sender that is not its issuer"
            )


@attrs.frozen(slots=True)
class Swap:
    """Trade ``amount_in`` of ``asset_in`` with a constant-product pool. Access {sender, pool}."""

    pool: bytes
    asset_in: int
    amount_in: int
    min_out: int
    OP: ClassVar[Op] = Op.SWAP
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQQ")

    def pack(self) -> bytes:
        return self.LAYOUT.pack(self.pool, self.asset_in, self.amount_in, self.min_out)

    @classmethod
    def unpack(cls, data: bytes) -> Swap:
        return cls(*_fields(cls.LAYOUT, "swap", data))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.pool)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("pool", self.pool)
        pair = genesis.pools.get(self.pool)
        if pair is None:
            raise InvalidTransaction(f"no pool {self.pool.hex()}")
        if self.asset_in not in pair:
            raise InvalidTransaction(
                f"pool {self.pool.hex()[:16]} does not trade asset {self.asset_in}"
            )
        _check_amount("amount_in", self.amount_in)
        if not 0 <= self.min_out <= MAX:
            raise InvalidTransaction(f"min_out {self.min_out} outside 0..{MAX}")


MAX_ACCESS = 2
MAX_RECIPIENTS = 16
MAX_CIPHERTEXT = 1024
_WRAPPED = 48  # a 32-byte content key sealed with ChaCha20-Poly1305


@attrs.frozen(slots=True)
class Private:
    """An encrypted call. Public: its access set and its recipients; the operation and its
    arguments are sealed to the recipients (see :mod:`lazyledger.crypto`). Validators check only
    this envelope; a materialiser that can open it replays the inner call."""

    accounts: tuple[bytes, ...]
    ephemeral: bytes
    key_check: bytes
    recipients: tuple[tuple[bytes, bytes], ...]
    ciphertext: bytes
    OP: ClassVar[Op] = Op.PRIVATE

    def pack(self) -> bytes:
        parts = [bytes([len(self.accounts)]), *self.accounts, self.ephemeral, self.key_check]
        parts.append(bytes([len(self.recipients)]))
        for key, wrapped in self.recipients:
            parts += [key, wrapped]
        parts.append(self.ciphertext)
        return b"".join(parts)

    @classmethod
    def unpack(cls, data: bytes) -> Private:
        if not data:
            raise InvalidTransaction("private envelope is empty")
        n = data[0]
        at = 1 + 32 * n
        if not 1 <= n <= MAX_ACCESS or len(data) < at + 65:
            raise InvalidTransaction(f"private envelope declares {n} accounts or is truncated")
        accounts = tuple(data[1 + 32 * i : 33 + 32 * i] for i in range(n))
        ephemeral, key_check, k = data[at : at + 32], data[at + 32 : at + 64], data[at + 64]
        at += 65
        if not 1 <= k <= MAX_RECIPIENTS or len(data) < at + k * (32 + _WRAPPED):
            raise InvalidTransaction(f"private envelope names {k} recipients or is truncated")
        recipients = []
        for _ in range(k):
            recipients.append((data[at : at + 32], data[at + 32 : at + 32 + _WRAPPED]))
            at += 32 + _WRAPPED
        return cls(accounts, ephemeral, key_check, tuple(recipients), data[at:])

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return self.accounts

    def check(self, genesis: Genesis, sender: bytes) -> None:
        if not 1 <= len(self.accounts) <= MAX_ACCESS or len(set(self.accounts)) != len(
            self.accounts
        ):
            raise InvalidTransaction(f"a private call declares 1..{MAX_ACCESS} distinct accounts")
        for a in self.accounts:
            _check_account("access account", a)
        if len(self.ephemeral) != 32 or len(self.key_check) != 32:
            raise InvalidTransaction("private envelope keys must be 32 bytes")
        keys = [k for k, _ in self.recipients]
        if not 1 <= len(keys) <= MAX_RECIPIENTS or len(set(keys)) != len(keys):
            raise InvalidTransaction(
                f"a private call names 1..{MAX_RECIPIENTS} distinct recipients"
            )
        if any(len(k) != 32 or len(w) != _WRAPPED for k, w in self.recipients):
            raise InvalidTransaction("malformed recipient entry")
        if not 17 <= len(self.ciphertext) <= MAX_CIPHERTEXT:
            raise InvalidTransaction(f"private ciphertext of {len(self.ciphertext)} bytes")


PublicCall = Transfer | Mint | Swap
AnyCall = Transfer | Mint | Swap | Private
CALLS: dict[int, type[Transfer] | type[Mint] | type[Swap] | type[Private]] = {
    Op.TRANSFER: Transfer,
    Op.MINT: Mint,
    Op.SWAP: Swap,
    Op.PRIVATE: Private,
}


def unpack_call(op: int, data: bytes) -> AnyCall:
    """Decode an operation's argument bytes; raises InvalidTransaction on any mismatch."""
    cls = CALLS.get(op)
    if cls is None:
        raise InvalidTransaction(f"unknown operation code {op}")
    return cls.unpack(data)


def unpack_public_call(data: bytes) -> PublicCall:
    """Decode ``op || args`` of a public call (the plaintext of a private one)."""
    if not data:
        raise InvalidTransaction("empty call")
    call = unpack_call(data[0], data[1:])
    if isinstance(call, Private):
        raise InvalidTransaction("a private call cannot nest another")
    return call


def resolve_private(
    genesis: Genesis, sender: bytes, envelope: Private, inner: PublicCall | None
) -> PublicCall | Status:
    """The call a readable private transaction stands for, or the status it fails with.

    Validators never saw the inner call, so its own checks run here, identically for everyone
    who can read it: a malformed or unauthorised call fails, as does one that touches accounts
    outside the declared (public) access set."""
    if inner is None:
        return Status.PRIVATE_INVALID
    try:
        inner.check(genesis, sender)
    except InvalidTransaction:
        return Status.PRIVATE_INVALID
    if not set(inner.access(sender)) <= set(envelope.accounts):
        return Status.PRIVATE_ACCESS
    return inner


def other_asset(genesis: Genesis, pool: bytes, asset_in: int) -> int:
    """The asset a pool pays out for ``asset_in``."""
    a, b = genesis.pools[pool]
    return b if asset_in == a else a


def swap_output(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Constant-product output with a 0.3% fee, in exact integer arithmetic."""
    return (amount_in * 997 * reserve_out) // (reserve_in * 1000 + amount_in * 997)


def apply(state: Balances, genesis: Genesis, sender: bytes, call: PublicCall) -> Status:
    """Apply one operation to ``state`` in place (only if it succeeds) and return its status.

    This is the normative semantics of DESIGN.md, written for clarity; the Numba replay kernel
    must agree with it bit for bit."""
    get = state.get
    if isinstance(call, Transfer):
        have = get((sender, call.asset), 0)
        if have < call.amount:
            return Status.INSUFFICIENT_BALANCE
        if call.to == sender:
            return Status.APPLIED
        dest = get((call.to, call.asset), 0)
        if dest + call.amount > MAX:
            return Status.BALANCE_OVERFLOW
        state[(sender, call.asset)] = have - call.amount
        state[(call.to, call.asset)] = dest + call.amount
        return Status.APPLIED
    if isinstance(call, Mint):
        dest = get((call.to, call.asset), 0)
        if dest + call.amount > MAX:
            return Status.BALANCE_OVERFLOW
        state[(call.to, call.asset)] = dest + call.amount
        return Status.APPLIED
    asset_out = other_asset(genesis, call.pool, call.asset_in)
    have = get((sender, call.asset_in), 0)
    if have < call.amount_in:
        return Status.INSUFFICIENT_BALANCE
    r_in = get((call.pool, call.asset_in), 0)
    r_out = get((call.pool, asset_out), 0)
    out = swap_output(call.amount_in, r_in, r_out)
    if out < 1:
        return Status.SWAP_NO_OUTPUT
    if out >= r_out:
        return Status.SWAP_DRAINS_POOL
    if out < call.min_out:
        return Status.SWAP_BELOW_MIN_OUT
    got = get((sender, asset_out), 0)
    if r_in + call.amount_in > MAX or got + out > MAX:
        return Status.BALANCE_OVERFLOW
    state[(sender, call.asset_in)] = have - call.amount_in
    state[(call.pool, call.asset_in)] = r_in + call.amount_in
    state[(call.pool, asset_out)] = r_out - out
    state[(sender, asset_out)] = got + out
    return Status.APPLIED


def genesis_balances(genesis: Genesis) -> Balances:
    """The pure-Python state before the first block."""
    return {
        (account, asset): amount
        for account, held in genesis.balances.items()
        for asset, amount in held.items()
        if amount
    }


def balances_of(state: Mapping[tuple[bytes, int], int], account: bytes) -> dict[int, int]:
    """Non-zero balances of one account, by asset, in asset order."""
    return dict(sorted((a, v) for (acc, a), v in state.items() if acc == account and v))
