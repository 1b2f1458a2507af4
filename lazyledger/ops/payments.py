"""Two embedder-defined operations whose access sets hold more than two accounts, as an
embedding chain would write them (not registered by default; see :mod:`lazyledger.ops.examples`
for narrow ones):

- ``split(asset, payees)`` (code 130, width 7): the sender pays each of 1..6 payees its amount
  of ``asset``, all or nothing. Access {sender, payees}.
- ``sale(seller, creator, market, item, asset, price, royalty_bps, fee_bps)`` (code 131,
  width 4): an NFT-style sale. The buyer (sender) pays ``price`` of ``asset``: the creator
  gets ``price * royalty_bps // 10000``, the marketplace ``price * fee_bps // 10000``, the
  seller the rest, and one unit of ``item`` moves from the seller to the buyer, all or
  nothing. Fails with its own status 129 if the seller holds no ``item``. Access {sender,
  seller, creator, market}.

Accounts may repeat (a creator selling their own work, a payee paid twice): both ops are
defined as a sequence of debits and credits, in the order written, that fails as a whole if
one of them would take a balance below 0 or above MAX."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from numba import njit

from lazyledger.errors import InvalidTransaction
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
    wide_row_body,
)

if TYPE_CHECKING:
    from lazyledger.model import Genesis

SPLIT, SALE = 130, 131
MAX_PAYEES = 6
SELLER_HAS_NO_ITEM = 129
"""Sale's own failure status (``OpSpec.reasons``)."""
BPS = 10_000
_MAX = np.int64(MAX)
_APPLIED, _INSUFFICIENT = int(Status.APPLIED), int(Status.INSUFFICIENT_BALANCE)
_OVERFLOW = int(Status.BALANCE_OVERFLOW)
_HEAD = struct.Struct(">IB")
_PAYEE = struct.Struct(">32sQ")


def _payees(items: Iterable[tuple[bytes, int]]) -> tuple[tuple[bytes, int], ...]:
    return tuple(items)


def _distinct(accounts: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return tuple(dict.fromkeys(accounts))


@attrs.frozen(slots=True)
class Split:
    """Pay each ``(account, amount)`` of ``payees`` (1..6 of them) from the sender's
    ``asset``. Arguments: ``asset:u32 count:u8`` then ``count`` times ``account:32 amount:u64``
    (big-endian)."""

    asset: int
    payees: tuple[tuple[bytes, int], ...] = attrs.field(converter=_payees)
    OP: ClassVar[int] = SPLIT
    NAME: ClassVar[str] = "split"

    def pack(self) -> bytes:
        if not 1 <= len(self.payees) <= MAX_PAYEES:
            raise InvalidTransaction(f"a split pays 1..{MAX_PAYEES} payees, not {len(self.payees)}")
        if not isinstance(self.asset, int) or not 0 <= self.asset < 1 << 32:
            raise InvalidTransaction(f"split asset {self.asset!r} outside 0..{(1 << 32) - 1}")
        out = [_HEAD.pack(self.asset, len(self.payees))]
        for entry in self.payees:
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise InvalidTransaction("a split payee is an (account, amount) pair")
            account, amount = entry
            if not isinstance(account, bytes) or len(account) != 32:
                raise InvalidTransaction("a split payee's account must be 32 bytes")
            if not isinstance(amount, int) or not 0 <= amount < 1 << 64:
                raise InvalidTransaction(f"split amount {amount!r} outside 0..{(1 << 64) - 1}")
            out.append(_PAYEE.pack(account, amount))
        return b"".join(out)

    @classmethod
    def unpack(cls, data: bytes) -> Split:
        if len(data) < _HEAD.size:
            raise InvalidTransaction(f"split arguments are {len(data)} bytes, too short")
        asset, count = _HEAD.unpack_from(data)
        if not 1 <= count <= MAX_PAYEES or len(data) != _HEAD.size + count * _PAYEE.size:
            raise InvalidTransaction(
                f"split arguments are {len(data)} bytes for {count} payees"
                f" (1..{MAX_PAYEES} payees of {_PAYEE.size} bytes)"
            )
        payees: list[tuple[bytes, int]] = []
        for j in range(count):
            account, amount = _PAYEE.unpack_from(data, _HEAD.size + j * _PAYEE.size)
            payees.append((account, amount))
        return cls(asset, tuple(payees))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return _distinct((sender, *(a for a, _ in self.payees)))

    def check(self, genesis: Genesis, sender: bytes) -> None:
        if not 1 <= len(self.payees) <= MAX_PAYEES:
            raise InvalidTransaction(f"a split pays 1..{MAX_PAYEES} payees")
        check_asset(genesis, self.asset)
        for account, amount in self.payees:
            check_account("payee", account)
            check_amount("amount", amount)
        total = sum(v for _, v in self.payees)
        if total > MAX:
            raise InvalidTransaction(f"a split pays {total} in all, above {MAX}")


def _credit(state: Balances, work: Balances, key: tuple[bytes, int], amount: int) -> bool:
    """Credit ``amount`` to ``key`` in ``work`` (changes over ``state``); False past MAX."""
    now = work.get(key, state.get(key, 0))
    if now > MAX - amount:
        return False
    work[key] = now + amount
    return True


def apply_split(state: Balances, ctx: Context, call: Split) -> int:
    total = sum(v for _, v in call.payees)
    have = state.get((ctx.sender, call.asset), 0)
    if have < total:
        return Status.INSUFFICIENT_BALANCE
    work = {(ctx.sender, call.asset): have - total}  # lands in ``state`` only if all fit
    for account, amount in call.payees:
        if not _credit(state, work, (account, call.asset), amount):
            return Status.BALANCE_OVERFLOW
    state.update(work)
    return Status.APPLIED


def row_split(ctx: Context, call: Split) -> bytes:
    """Accounts: the sender, then each payee (the rest repeat the sender); integers: the
    total, then each payee's amount (the rest 0)."""
    pad = MAX_PAYEES - len(call.payees)
    accounts = [ctx.sender, *(a for a, _ in call.payees), *[ctx.sender] * pad]
    total = sum(v for _, v in call.payees)
    ints = [total, *(v for _, v in call.payees), *[0] * pad]
    return wide_row_body(SPLIT, call.asset, call.asset, accounts, ints)


@njit(cache=True, inline="always")
def kernel_split(bal, a, b, v):  # type: ignore[no-untyped-def]
    """Debit ``v[0]`` from account 0, then credit ``v[j]`` to account ``j`` (1..6); a credit
    that would pass MAX undoes the ones before it."""
    total = v[0]
    if bal[a[0]] < total:
        return _INSUFFICIENT
    bal[a[0]] -= total
    for j in range(1, MAX_PAYEES + 1):
        if bal[a[j]] > _MAX - v[j]:
            for k in range(j - 1, 0, -1):
                bal[a[k]] -= v[k]
            bal[a[0]] += total
            return _OVERFLOW
        bal[a[j]] += v[j]
    return _APPLIED


@attrs.frozen(slots=True)
class Sale(Fixed):
    """Buy one unit of ``item`` from ``seller`` for ``price`` of ``asset``, paying the
    ``creator`` a royalty and the ``market`` a fee (basis points of the price)."""

    seller: bytes
    creator: bytes
    market: bytes
    item: int
    asset: int
    price: int
    royalty_bps: int
    fee_bps: int
    OP: ClassVar[int] = SALE
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32s32sIIQHH")
    NAME: ClassVar[str] = "sale"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return _distinct((sender, self.seller, self.creator, self.market))

    def check(self, genesis: Genesis, sender: bytes) -> None:
        for name in ("seller", "creator", "market"):
            check_account(name, getattr(self, name))
        check_asset(genesis, self.item)
        check_asset(genesis, self.asset)
        if self.item == self.asset:
            raise InvalidTransaction("a sale pays in another asset than the item it sells")
        check_amount("price", self.price)
        if self.royalty_bps + self.fee_bps > BPS:
            raise InvalidTransaction(
                f"royalty {self.royalty_bps} + fee {self.fee_bps} basis points exceed {BPS}"
            )

    def shares(self) -> tuple[int, int, int]:
        """(seller's, creator's, market's) parts of the price."""
        royalty = self.price * self.royalty_bps // BPS
        fee = self.price * self.fee_bps // BPS
        return self.price - royalty - fee, royalty, fee


def apply_sale(state: Balances, ctx: Context, call: Sale) -> int:
    buyer = ctx.sender
    have = state.get((buyer, call.asset), 0)
    if have < call.price:
        return Status.INSUFFICIENT_BALANCE
    held = state.get((call.seller, call.item), 0)
    if held < 1:
        return SELLER_HAS_NO_ITEM
    net, royalty, fee = call.shares()
    work = {(buyer, call.asset): have - call.price}  # lands in ``state`` only if all fit
    for account, amount in ((call.seller, net), (call.creator, royalty), (call.market, fee)):
        if not _credit(state, work, (account, call.asset), amount):
            return Status.BALANCE_OVERFLOW
    work[(call.seller, call.item)] = held - 1
    if not _credit(state, work, (buyer, call.item), 1):
        return Status.BALANCE_OVERFLOW
    state.update(work)
    return Status.APPLIED


def row_sale(ctx: Context, call: Sale) -> bytes:
    """Accounts: buyer, seller, creator, market; integers: price, then the seller's, creator's
    and market's parts."""
    net, royalty, fee = call.shares()
    accounts = [ctx.sender, call.seller, call.creator, call.market]
    return wide_row_body(SALE, call.asset, call.item, accounts, [call.price, net, royalty, fee])


@njit(cache=True, inline="always")
def kernel_sale(bal, a, b, v):  # type: ignore[no-untyped-def]
    """Slots ``a`` hold the payment asset, ``b`` the item, of buyer, seller, creator, market."""
    price = v[0]
    if bal[a[0]] < price:
        return _INSUFFICIENT
    if bal[b[1]] < 1:
        return SELLER_HAS_NO_ITEM
    bal[a[0]] -= price
    for j in range(1, 4):
        if bal[a[j]] > _MAX - v[j]:
            for k in range(j - 1, 0, -1):
                bal[a[k]] -= v[k]
            bal[a[0]] += price
            return _OVERFLOW
        bal[a[j]] += v[j]
    bal[b[1]] -= 1
    if bal[b[0]] > _MAX - 1:
        bal[b[1]] += 1
        for k in range(3, 0, -1):
            bal[a[k]] -= v[k]
        bal[a[0]] += price
        return _OVERFLOW
    bal[b[0]] += 1
    return _APPLIED


OPS = (
    OpSpec(SPLIT, "split", Split, apply_split, row_split, kernel_split, light=True, width=7),
    OpSpec(
        SALE,
        "sale",
        Sale,
        apply_sale,
        row_sale,
        kernel_sale,
        light=True,
        reasons={SELLER_HAS_NO_ITEM: "the seller holds none of the item"},
        width=4,
    ),
)
"""Pass these to ``Ledger.create/open(..., ops=OPS)`` of a chain whose genesis declares
``ops=[spec.declared for spec in OPS]``."""
