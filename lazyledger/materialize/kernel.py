"""The Numba replay kernel for deterministic operations over columnar arrays.

Exact integer semantics of :func:`lazyledger.ops.apply`: int64 balances, and the swap's
``amount_in * 997 * reserve_out`` (up to 136 bits) computed with 64-bit limbs and an exact
long division, never with floats."""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

_M32 = uint64(0xFFFFFFFF)
_MAX = np.int64(2**63 - 1)

OP_TRANSFER, OP_MINT, OP_SWAP, OP_FAIL, OP_TRANSFER_IF, OP_JOB, OP_REVEAL = 1, 2, 3, 4, 8, 16, 19
JOB_OPEN, JOB_CLOSED = 1, 2
APPLIED, INSUFFICIENT, OVERFLOW, NO_OUTPUT, DRAINS, BELOW_MIN = 0, 1, 2, 3, 4, 5
CONDITION_FALSE = 8


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
def swap_output(amount_in: np.int64, r_in: np.int64, r_out: np.int64) -> np.int64:
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


@njit(cache=True)
def replay(
    op: np.ndarray,
    s_a0: np.ndarray,
    s_a1: np.ndarray,
    s_b0: np.ndarray,
    s_b1: np.ndarray,
    amount: np.ndarray,
    min_out: np.ndarray,
    bal: np.ndarray,
    status: np.ndarray,
    start: int,
) -> int:
    """Apply rows ``start..`` to ``bal`` (balances by slot), writing each row's status.

    Slots: a0=(acc0, asset) a1=(acc1, asset) b0=(acc0, asset2) b1=(acc1, asset2). Stops at the
    first row whose op it does not know and returns its index (the caller handles that row and
    resumes); returns len(op) when done."""
    n = op.shape[0]
    for i in range(start, n):
        o = op[i]
        v = amount[i]
        if o == OP_TRANSFER_IF:
            if bal[s_b0[i]] != min_out[i]:
                status[i] = CONDITION_FALSE
                continue
            o = OP_TRANSFER
        if o == OP_TRANSFER:
            src = s_a0[i]
            dst = s_a1[i]
            have = bal[src]
            if have < v:
                status[i] = INSUFFICIENT
            elif src == dst:
                status[i] = APPLIED
            elif bal[dst] > _MAX - v:
                status[i] = OVERFLOW
            else:
                bal[src] = have - v
                bal[dst] += v
                status[i] = APPLIED
        elif o == OP_MINT:
            dst = s_a0[i]
            if bal[dst] > _MAX - v:
                status[i] = OVERFLOW
            else:
                bal[dst] += v
                status[i] = APPLIED
        elif o == OP_SWAP:
            pay = s_a0[i]
            have = bal[pay]
            if have < v:
                status[i] = INSUFFICIENT
                continue
            r_in = bal[s_a1[i]]
            r_out = bal[s_b1[i]]
            out = swap_output(v, r_in, r_out)
            got = bal[s_b0[i]]
            if out < 1:
                status[i] = NO_OUTPUT
            elif out >= r_out:
                status[i] = DRAINS
            elif out < min_out[i]:
                status[i] = BELOW_MIN
            elif r_in > _MAX - v or got > _MAX - out:
                status[i] = OVERFLOW
            else:
                bal[pay] = have - v
                bal[s_a1[i]] = r_in + v
                bal[s_b1[i]] = r_out - out
                bal[s_b0[i]] = got + out
                status[i] = APPLIED
        elif o == OP_JOB:  # escrow the bounty into the job account and open the job
            src = s_a0[i]
            dst = s_a1[i]
            if bal[src] < v:
                status[i] = INSUFFICIENT
            elif bal[dst] > _MAX - v:
                status[i] = OVERFLOW
            else:
                bal[src] -= v
                bal[dst] += v
                bal[s_b1[i]] = JOB_OPEN
                status[i] = APPLIED
        elif o == OP_REVEAL:  # close an open job to new claims
            if bal[s_b1[i]] == JOB_OPEN:
                bal[s_b1[i]] = JOB_CLOSED
            status[i] = APPLIED
        elif o == OP_FAIL:
            status[i] = min_out[i]
        else:
            return i
    return n  # type: ignore[no-any-return]
