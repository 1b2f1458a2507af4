"""``private``: a call sealed to its recipients. Validators see only the envelope (access set,
recipients); a reader that can open it replays the inner call, a sealable op (see
:class:`lazyledger.ops.OpSpec`), in its place. ``FAIL`` is the row of an opened call that its
readers find invalid."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

import attrs
from numba import njit

from lazyledger.errors import InvalidTransaction
from lazyledger.ops.base import (
    FAIL,
    Context,
    Op,
    OpSpec,
    Status,
    chain_runs,
    check_account,
    row_body,
)

if TYPE_CHECKING:
    from lazyledger.model import Call, Genesis

C = TypeVar("C")

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
            check_account("access account", a)
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


def resolve_private(genesis: Genesis, sender: bytes, envelope: Private, inner: C) -> C | Status:
    """The call a readable private transaction stands for, or the status it fails with.

    Validators never saw the inner call, so its own checks run here, identically for everyone
    who can read it: a malformed or unauthorised call fails, as does one that touches accounts
    outside the declared (public) access set."""
    call = cast("Call", inner)
    if not chain_runs(genesis, call.OP):
        return Status.PRIVATE_INVALID
    try:
        call.check(genesis, sender)
    except InvalidTransaction:
        return Status.PRIVATE_INVALID
    if not set(call.access(sender)) <= set(envelope.accounts):
        return Status.PRIVATE_ACCESS
    return inner


def row_private(ctx: Context, call: Private) -> bytes:
    """The envelope's access set; replaced by the opened call's row (or a FAIL row) before
    replay."""
    a = call.accounts
    return row_body(call.OP, 0, 0, 0, 0, a[0], a[-1])


def failed_body(status: Status, acc0: bytes, acc1: bytes) -> bytes:
    """A FAIL row body: the transaction fails with ``status`` and changes nothing."""
    return row_body(FAIL, 0, 0, 0, int(status), acc0, acc1)


@njit(cache=True, inline="always")
def kernel_fail(bal, a0, a1, b0, b1, v, m):  # type: ignore[no-untyped-def]
    """The status the row carries; no balance changes."""
    return m


SPECS = (
    OpSpec(Op.PRIVATE, "private", Private, row=row_private, stored_whole=True),
    OpSpec(FAIL, "fail", None, kernel=kernel_fail),
)
