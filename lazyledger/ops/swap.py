"""``swap``: trade with a constant-product pool (0.3% fee), in exact integer arithmetic; the
kernel computes ``amount_in * 997 * reserve_out`` (up to 136 bits) with 64-bit limbs and an
exact long division, never with floats."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from numba import njit, uint64

from lazyledger.errors import InvalidTransaction
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
    row_body,
)

if TYPE_CHECKING:
    from lazyledger.model import Genesis

_M32 = uint64(0xFFFFFFFF)
_MAX = np.int64(MAX)
_APPLIED, _INSUFFICIENT = int(Status.APPLIED), int(Status.INSUFFICIENT_BALANCE)
_OVERFLOW, _NO_OUTPUT = int(Status.BALANCE_OVERFLOW), int(Status.SWAP_NO_OUTPUT)
_DRAINS, _BELOW_MIN = int(Status.SWAP_DRAINS_POOL), int(Status.SWAP_BELOW_MIN_OUT)


@attrs.frozen(slots=True)
class Swap(Fixed):
    """Trade ``amount_in`` of ``asset_in`` with a constant-product pool. Access {sender, pool}."""

    pool: bytes
    asset_in: int
    amount_in: int
    min_out: int
    OP: ClassVar[Op] = Op.SWAP
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32sIQQ")
    NAME: ClassVar[str] = "swap"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.pool)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        check_account("pool", self.pool)
        pair = genesis.pools.get(self.pool)
        if pair is None:
            raise InvalidTransaction(f"no pool {self.pool.hex()}")
        if self.asset_in not in pair:
            raise InvalidTransaction(
                f"pool {self.pool.hex()[:16]} does not trade asset {self.asset_in}"
            )
        check_amount("amount_in", self.amount_in)
        if not 0 <= self.min_out <= MAX:
            raise InvalidTransaction(f"min_out {self.min_out} outside 0..{MAX}")


def other_asset(genesis: Genesis, pool: bytes, asset_in: int) -> int:
    """The asset a pool pays out for ``asset_in``."""
    a, b = genesis.pools[pool]
    return b if asset_in == a else a


def swap_output(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Constant-product output with a 0.3% fee, in exact integer arithmetic."""
    return (amount_in * 997 * reserve_out) // (reserve_in * 1000 + amount_in * 997)


def apply_swap(state: Balances, ctx: Context, call: Swap) -> Status:
    get = state.get
    sender = ctx.sender
    asset_out = other_asset(ctx.genesis, call.pool, call.asset_in)
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


def row_swap(ctx: Context, call: Swap) -> bytes:
    out = other_asset(ctx.genesis, call.pool, call.asset_in)
    amount, min_out = call.amount_in, call.min_out
    return row_body(call.OP, call.asset_in, out, amount, min_out, ctx.sender, call.pool)


@njit(cache=True, inline="always")
def _mul64(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Full 128-bit product of two uint64 as (hi, lo)."""
    a_lo = a & _M32
    a_hi = a >> uint64(32)
    b_lo = b & _M32
    b_hi = b >> uint64(32)
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> uint64(32)) + (p1 & _M32) + (p2 & _M32)
    lo = (p0 & _M32) | (mid << uint64(32))
    hi = p3 + (p1 >> uint64(32)) + (p2 >> uint64(32)) + (mid >> uint64(32))
    return hi, lo


@njit(cache=True)
def kernel_swap_output(amount_in: np.int64, r_in: np.int64, r_out: np.int64) -> np.int64:
    """(amount_in*997*r_out) // (r_in*1000 + amount_in*997), exactly, for inputs in [0, MAX]."""
    a = uint64(amount_in)
    x_hi, x_lo = _mul64(a, uint64(997))
    r = uint64(r_out)
    p_hi, p_lo = _mul64(x_lo, r)
    q_hi, q_lo = _mul64(x_hi, r)
    n0 = p_lo
    n1 = p_hi + q_lo
    n2 = q_hi + uint64(1 if n1 < p_hi else 0)
    d_hi, d_lo = _mul64(uint64(r_in), uint64(1000))
    d_lo2 = d_lo + x_lo
    d_hi = d_hi + x_hi + uint64(1 if d_lo2 < d_lo else 0)
    d_lo = d_lo2
    # Restoring long division of the 192-bit n2:n1:n0 by the 128-bit d_hi:d_lo. The quotient is
    # at most r_out < 2**63, and the remainder stays below 2*d < 2**76, so 128 bits hold it.
    rem_hi = uint64(0)
    rem_lo = uint64(0)
    q = uint64(0)
    for k in range(191, -1, -1):
        if k >= 128:
            bit = (n2 >> uint64(k - 128)) & uint64(1)
        elif k >= 64:
            bit = (n1 >> uint64(k - 64)) & uint64(1)
        else:
            bit = (n0 >> uint64(k)) & uint64(1)
        rem_hi = (rem_hi << uint64(1)) | (rem_lo >> uint64(63))
        rem_lo = (rem_lo << uint64(1)) | bit
        q = q << uint64(1)
        if rem_hi > d_hi or (rem_hi == d_hi and rem_lo >= d_lo):
            borrow = uint64(1 if rem_lo < d_lo else 0)
            rem_lo = rem_lo - d_lo
            rem_hi = rem_hi - d_hi - borrow
            q = q | uint64(1)
    return np.int64(q)


@njit(cache=True, inline="always")
def kernel_swap(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """(acc0, asset) pays into the pool (acc1, asset); (acc0, asset2) gets the pool's
    (acc1, asset2) output."""
    have = bal[a0]
    if have < v:
        return _INSUFFICIENT
    r_in = bal[a1]
    r_out = bal[b1]
    out = kernel_swap_output(v, r_in, r_out)
    got = bal[b0]
    if out < 1:
        return _NO_OUTPUT
    if out >= r_out:
        return _DRAINS
    if out < m:
        return _BELOW_MIN
    if r_in > _MAX - v or got > _MAX - out:
        return _OVERFLOW
    bal[a0] = have - v
    bal[a1] = r_in + v
    bal[b1] = r_out - out
    bal[b0] = got + out
    return _APPLIED


SPECS = (
    OpSpec(Op.SWAP, "swap", Swap, apply_swap, row_swap, kernel_swap, sealable=True, light=True),
)
