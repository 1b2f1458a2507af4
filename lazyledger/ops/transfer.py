"""Balance moves: ``transfer``, ``mint`` and ``transfer_if`` (a transfer conditioned on a
register, e.g. an inference result)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from numba import njit

from lazyledger.errors import InvalidTransaction
from lazyledger.model import MAX_REGISTER, REGISTER_BASE
from lazyledger.ops.base import (
    MAX,
    Balances,
    Context,
    Fixed,
    Op,
    OpSpec,
    Status,
    check_account,
    check_amount,
    check_asset,
    row_body,
)

if TYPE_CHECKING:
    from lazyledger.model import Genesis

MAX_INFER_SAMPLES = 16

_MAX = np.int64(MAX)
_APPLIED, _INSUFFICIENT = int(Status.APPLIED), int(Status.INSUFFICIENT_BALANCE)
_OVERFLOW, _CONDITION_FALSE = int(Status.BALANCE_OVERFLOW), int(Status.CONDITION_FALSE)


def check_register(register: int, count: int) -> None:
    if not 1 <= count <= MAX_INFER_SAMPLES or not 0 <= register <= MAX_REGISTER + 1 - count:
        raise InvalidTransaction(
            f"registers {register}..{register + count - 1} outside 0..{MAX_REGISTER}"
            f" or count {count} outside 1..{MAX_INFER_SAMPLES}"
        )


@attrs.frozen(slots=True)
class Transfer(Fixed):
    """Move ``amount`` of ``asset`` from the sender to ``to``. Access {sender, to}."""

    to: bytes
    asset: int
    amount: int
    OP: ClassVar[Op] = Op.TRANSFER
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQ")
    NAME: ClassVar[str] = "transfer"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender,) if self.to == sender else (sender, self.to)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("to", self.to)
        check_asset(genesis, self.asset)
        check_amount("amount", self.amount)


@attrs.frozen(slots=True)
class Mint(Fixed):
    """Create ``amount`` of ``asset`` in ``to``; only its issuer may send this. Access {to}."""

    to: bytes
    asset: int
    amount: int
    OP: ClassVar[Op] = Op.MINT
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQ")
    NAME: ClassVar[str] = "mint"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (self.to,)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("to", self.to)
        check_asset(genesis, self.asset)
        check_amount("amount", self.amount)
        if genesis.assets[self.asset] != sender:
            raise InvalidTransaction(
                f"mint of asset {self.asset} by a sender that is not its issuer"
            )


@attrs.frozen(slots=True)
class TransferIf(Fixed):
    """A transfer that applies only if the sender's ``register`` holds ``equals + 1`` (e.g. an
    inference result: pay out conditioned on a class). Access {sender, to}."""

    to: bytes
    asset: int
    amount: int
    register: int
    equals: int
    OP: ClassVar[Op] = Op.TRANSFER_IF
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQHI")
    NAME: ClassVar[str] = "transfer_if"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender,) if self.to == sender else (sender, self.to)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("to", self.to)
        check_asset(genesis, self.asset)
        check_amount("amount", self.amount)
        check_register(self.register, 1)


def move(state: Balances, sender: bytes, to: bytes, asset: int, amount: int) -> Status:
    """Move ``amount`` of ``asset`` from ``sender`` to ``to``: the transfer rule."""
    get = state.get
    have = get((sender, asset), 0)
    if have < amount:
        return Status.INSUFFICIENT_BALANCE
    if to == sender:
        return Status.APPLIED
    dest = get((to, asset), 0)
    if dest + amount > MAX:
        return Status.BALANCE_OVERFLOW
    state[(sender, asset)] = have - amount
    state[(to, asset)] = dest + amount
    return Status.APPLIED


def apply_transfer(state: Balances, ctx: Context, call: Transfer) -> Status:
    return move(state, ctx.sender, call.to, call.asset, call.amount)


def apply_mint(state: Balances, ctx: Context, call: Mint) -> Status:
    dest = state.get((call.to, call.asset), 0)
    if dest + call.amount > MAX:
        return Status.BALANCE_OVERFLOW
    state[(call.to, call.asset)] = dest + call.amount
    return Status.APPLIED


def apply_transfer_if(state: Balances, ctx: Context, call: TransferIf) -> Status:
    if state.get((ctx.sender, REGISTER_BASE + call.register), 0) != call.equals + 1:
        return Status.CONDITION_FALSE
    return move(state, ctx.sender, call.to, call.asset, call.amount)


def row_transfer(ctx: Context, call: Transfer) -> bytes:
    return row_body(call.OP, call.asset, call.asset, call.amount, 0, ctx.sender, call.to)


def row_mint(ctx: Context, call: Mint) -> bytes:
    return row_body(call.OP, call.asset, call.asset, call.amount, 0, call.to, call.to)


def row_transfer_if(ctx: Context, call: TransferIf) -> bytes:
    reg = REGISTER_BASE + call.register
    return row_body(call.OP, call.asset, reg, call.amount, call.equals + 1, ctx.sender, call.to)


@njit(cache=True, inline="always")
def kernel_transfer(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """(acc0, asset) pays ``amount`` to (acc1, asset)."""
    have = bal[a0]
    if have < v:
        return _INSUFFICIENT
    if a0 == a1:
        return _APPLIED
    if bal[a1] > _MAX - v:
        return _OVERFLOW
    bal[a0] = have - v
    bal[a1] += v
    return _APPLIED


@njit(cache=True, inline="always")
def kernel_mint(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """``amount`` more in (acc0, asset)."""
    if bal[a0] > _MAX - v:
        return _OVERFLOW
    bal[a0] += v
    return _APPLIED


@njit(cache=True, inline="always")
def kernel_transfer_if(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """A transfer, if the register (acc0, asset2) holds ``min_out``."""
    if bal[b0] != m:
        return _CONDITION_FALSE
    return kernel_transfer(bal, a0, a1, b0, b1, v, m)


SPECS = (
    OpSpec(
        Op.TRANSFER,
        "transfer",
        Transfer,
        apply_transfer,
        row_transfer,
        kernel_transfer,
        sealable=True,
        light=True,
    ),
    OpSpec(Op.MINT, "mint", Mint, apply_mint, row_mint, kernel_mint, sealable=True, light=True),
    OpSpec(
        Op.TRANSFER_IF,
        "transfer_if",
        TransferIf,
        apply_transfer_if,
        row_transfer_if,
        kernel_transfer_if,
        sealable=True,
        light=True,
    ),
)
