"""The operation registry: codes, argument layouts, access sets, stateless checks, and the
pure-Python semantics that every fast path (the Numba kernel) is tested against.

Amounts and balances are integers in ``[0, MAX]``. A failing operation changes no balance."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

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


class Status(IntEnum):
    """Outcome of one transaction at materialisation; 0 is applied, the rest are failures."""

    APPLIED = 0
    INSUFFICIENT_BALANCE = 1
    BALANCE_OVERFLOW = 2
    SWAP_NO_OUTPUT = 3
    SWAP_DRAINS_POOL = 4
    SWAP_BELOW_MIN_OUT = 5


REASONS: dict[int, str] = {
    Status.APPLIED: "",
    Status.INSUFFICIENT_BALANCE: "insufficient balance",
    Status.BALANCE_OVERFLOW: "a balance would exceed MAX",
    Status.SWAP_NO_OUTPUT: "swap output rounds to zero",
    Status.SWAP_DRAINS_POOL: "swap output would drain the pool reserve",
    Status.SWAP_BELOW_MIN_OUT: "swap output below min_out",
}

_U32 = 2**32


class Call(Protocol):
    """The operation and arguments a transaction carries."""

    OP: ClassVar[Op]
    LAYOUT: ClassVar[struct.Struct]

    def pack(self) -> bytes: ...

    def access(self, sender: bytes) -> tuple[bytes, ...]: ...

    def check(self, genesis: Genesis, sender: bytes) -> None: ...


def _check_amount(name: str, value: int) -> None:
    if not 0 < value <= MAX:
        raise InvalidTransaction(f"{name} {value} outside 1..{MAX}")


def _check_asset(genesis: Genesis, asset: int) -> None:
    if asset not in genesis.assets:
        raise InvalidTransaction(f"unknown asset {asset}")


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


CALLS: dict[int, type[Transfer] | type[Mint] | type[Swap]] = {
    Op.TRANSFER: Transfer,
    Op.MINT: Mint,
    Op.SWAP: Swap,
}

AnyCall = Transfer | Mint | Swap


def unpack_call(op: int, data: bytes) -> AnyCall:
    """Decode an operation's argument bytes; raises InvalidTransaction on any mismatch."""
    cls = CALLS.get(op)
    if cls is None:
        raise InvalidTransaction(f"unknown operation code {op}")
    if len(data) != cls.LAYOUT.size:
        raise InvalidTransaction(
            f"{cls.__name__.lower()} arguments are {len(data)} bytes, expected {cls.LAYOUT.size}"
        )
    return cls(*cls.LAYOUT.unpack(data))


def other_asset(genesis: Genesis, pool: bytes, asset_in: int) -> int:
    """The asset a pool pays out for ``asset_in``."""
    a, b = genesis.pools[pool]
    return b if asset_in == a else a


def swap_output(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Constant-product output with a 0.3% fee, in exact integer arithmetic."""
    return (amount_in * 997 * reserve_out) // (reserve_in * 1000 + amount_in * 997)


def apply(state: Balances, genesis: Genesis, sender: bytes, call: AnyCall) -> Status:
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
