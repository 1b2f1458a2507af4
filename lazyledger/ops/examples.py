"""Two embedder-defined operations, as an embedding chain would write them (not registered by
default: a chain declares them in its genesis and passes them to ``Ledger.create/open``).

- ``sweep(to, asset)`` (code 128): move the sender's whole balance of ``asset`` to ``to``
  (closing an account); fails with its own status 128 ("nothing to sweep") if it holds none.
  Access {sender, to}.
- ``burn(asset, amount)`` (code 129): destroy ``amount`` of the sender's ``asset``.
  Access {sender}.

Each is one module's worth of declarations: the call class (layout, access set, stateless
check), ``apply`` (the semantics, in plain Python), the replay row, the Numba kernel and the
:class:`~lazyledger.ops.OpSpec` tying them together."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from numba import njit

from lazyledger.ops.base import (
    MAX,
    Balances,
    Context,
    Fixed,
    OpSpec,
    Status,
    check_account,
    check_amount,
    check_asset,
    row_body,
)

if TYPE_CHECKING:
    from lazyledger.model import Genesis

SWEEP, BURN = 128, 129
_MAX = np.int64(MAX)
_APPLIED, _INSUFFICIENT = int(Status.APPLIED), int(Status.INSUFFICIENT_BALANCE)
_OVERFLOW = int(Status.BALANCE_OVERFLOW)
NOTHING_TO_SWEEP = 128
"""Sweep's own failure status (``OpSpec.reasons``)."""


@attrs.frozen(slots=True)
class Sweep(Fixed):
    """Move the sender's whole balance of ``asset`` to ``to``. Access {sender, to}."""

    to: bytes
    asset: int
    OP: ClassVar[int] = SWEEP
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sI")
    NAME: ClassVar[str] = "sweep"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender,) if self.to == sender else (sender, self.to)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("to", self.to)
        check_asset(genesis, self.asset)


def apply_sweep(state: Balances, ctx: Context, call: Sweep) -> int:
    have = state.get((ctx.sender, call.asset), 0)
    if have == 0:
        return NOTHING_TO_SWEEP
    if call.to == ctx.sender:
        return Status.APPLIED
    dest = state.get((call.to, call.asset), 0)
    if dest + have > MAX:
        return Status.BALANCE_OVERFLOW
    state[(ctx.sender, call.asset)] = 0
    state[(call.to, call.asset)] = dest + have
    return Status.APPLIED


def row_sweep(ctx: Context, call: Sweep) -> bytes:
    return row_body(SWEEP, call.asset, call.asset, 0, 0, ctx.sender, call.to)


@njit(cache=True, inline="always")
def kernel_sweep(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    have = bal[a0]
    if have == 0:
        return NOTHING_TO_SWEEP
    if a0 == a1:
        return _APPLIED
    if bal[a1] > _MAX - have:
        return _OVERFLOW
    bal[a0] = 0
    bal[a1] += have
    return _APPLIED


@attrs.frozen(slots=True)
class Burn(Fixed):
    """Destroy ``amount`` of the sender's ``asset``. Access {sender}."""

    asset: int
    amount: int
    OP: ClassVar[int] = BURN
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">IQ")
    NAME: ClassVar[str] = "burn"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender,)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_asset(genesis, self.asset)
        check_amount("amount", self.amount)


def apply_burn(state: Balances, ctx: Context, call: Burn) -> Status:
    have = state.get((ctx.sender, call.asset), 0)
    if have < call.amount:
        return Status.INSUFFICIENT_BALANCE
    state[(ctx.sender, call.asset)] = have - call.amount
    return Status.APPLIED


def row_burn(ctx: Context, call: Burn) -> bytes:
    return row_body(BURN, call.asset, call.asset, call.amount, 0, ctx.sender, ctx.sender)


@njit(cache=True, inline="always")
def kernel_burn(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    if bal[a0] < v:
        return _INSUFFICIENT
    bal[a0] -= v
    return _APPLIED


OPS = (
    OpSpec(
        SWEEP,
        "sweep",
        Sweep,
        apply_sweep,
        row_sweep,
        kernel_sweep,
        light=True,
        reasons={NOTHING_TO_SWEEP: "nothing to sweep: the sender holds none of the asset"},
    ),
    OpSpec(BURN, "burn", Burn, apply_burn, row_burn, kernel_burn, light=True),
)
"""Pass these to ``Ledger.create/open(..., ops=OPS)`` of a chain whose genesis declares
``ops=[spec.declared for spec in OPS]``."""
