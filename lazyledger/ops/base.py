"""What every operation shares: amounts, status codes, storage keys, argument layouts, the
replay-row body, the apply context, and :class:`OpSpec`, the one declaration of an operation.

Amounts and balances are integers in ``[0, MAX]``. A failing operation changes no balance."""

from __future__ import annotations

import inspect
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import attrs
import blake3

from lazyledger.errors import InvalidOpSpec, InvalidTransaction

if TYPE_CHECKING:
    from lazyledger.model import Genesis

MAX = 2**63 - 1

Balances = dict[tuple[bytes, int], int]
"""Pure-Python state: (account, asset) -> balance; a missing key is a zero balance."""


class Op(IntEnum):
    """Codes of the built-in operations, as they appear in canonical transaction bytes and
    replay rows (an embedding chain registers its own codes through :class:`OpSpec`)."""

    TRANSFER = 1
    MINT = 2
    SWAP = 3
    TRANSFER_IF = 8
    DNN_JOB = 16
    DNN_CLAIM = 17
    DNN_INFER = 18
    DNN_REVEAL = 19
    PRIVATE = 64


FAIL = 4
"""Row-only op: the transaction fails with status ``min_out`` and changes nothing (a private
call that its readers found invalid). No transaction carries it."""


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
    CONDITION_FALSE = 8
    JOB_NOT_OPEN = 9
    CLAIM_REJECTED = 10
    JOB_INVALID = 11
    NO_RESULT = 12
    BAD_INFER_INPUT = 13


REASONS: dict[int, str] = {
    Status.APPLIED: "",
    Status.INSUFFICIENT_BALANCE: "insufficient balance",
    Status.BALANCE_OVERFLOW: "a balance would exceed MAX",
    Status.SWAP_NO_OUTPUT: "swap output rounds to zero",
    Status.SWAP_DRAINS_POOL: "swap output would drain the pool reserve",
    Status.SWAP_BELOW_MIN_OUT: "swap output below min_out",
    Status.PRIVATE_INVALID: "the private call is invalid",
    Status.PRIVATE_ACCESS: "the private call exceeds its declared access set",
    Status.CONDITION_FALSE: "the register does not hold the required value",
    Status.JOB_NOT_OPEN: "the job is not open (unfunded, paid, or its hidden set revealed)",
    Status.CLAIM_REJECTED: "the weights fail the job's property check",
    Status.JOB_INVALID: "the job's model spec or validation data is invalid",
    Status.NO_RESULT: "the job has no accepted result yet",
    Status.BAD_INFER_INPUT: "the inference input does not fit the model or the register count",
}

OWN_STATUSES = 128
"""Status codes from here up belong to ops that declare them (``OpSpec.reasons``)."""
JOB_STATUS = 0xFFFF_FFFF
"""Storage key of a job account: 0 unfunded, 1 open, 2 closed (hidden validation set revealed
with no winner), 3 + packed position of the winning claim."""
JOB_OPEN, JOB_CLOSED, JOB_WON = 1, 2, 3


def chain_runs(genesis: Genesis, code: int) -> bool:
    """Whether a chain runs operation ``code``: a built-in (any op of the registry's built-in
    modules), or an op its genesis declares."""
    from lazyledger.ops.registry import BUILTIN_CODES  # (same layer; registry imports this)

    return code in BUILTIN_CODES or any(c == code for c, _ in genesis.ops)


def check_amount(name: str, value: int) -> None:
    if not 0 < value <= MAX:
        raise InvalidTransaction(f"{name} {value} outside 1..{MAX}")


def check_hash(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise InvalidTransaction(f"{name} must be a 32-byte blake3 hash, got {len(value)} bytes")


def check_account(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise InvalidTransaction(f"{name} must be a 32-byte account id, got {len(value)} bytes")


def check_asset(genesis: Genesis, asset: int) -> None:
    if asset not in genesis.assets:
        raise InvalidTransaction(f"unknown asset {asset}")


_WIDTHS: dict[str, list[tuple[str, int]]] = {}


def widths(layout: struct.Struct) -> list[tuple[str, int]]:
    """Per field of ``layout``: its struct code and its width in bytes."""
    found = _WIDTHS.get(layout.format)
    if found is None:
        found = [
            (code, int(count or 1) if code == "s" else struct.calcsize(">" + code))
            for count, code in re.findall(r"(\d*)([a-zA-Z?])", layout.format)
        ]
        _WIDTHS[layout.format] = found
    return found


def pack_fields(
    layout: struct.Struct, name: str, fields: Sequence[str], values: Sequence[Any]
) -> bytes:
    """``values`` packed by ``layout``, refusing (InvalidTransaction, naming the field) what
    struct would silently pad, cut or refuse with an opaque message: a byte string of another
    width, an integer outside its field."""
    for field, value, (code, width) in zip(fields, values, widths(layout), strict=True):
        if code == "s":
            if not isinstance(value, bytes) or len(value) != width:
                got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
                raise InvalidTransaction(f"{name} {field} must be {width} bytes, got {got}")
        elif not isinstance(value, int) or not 0 <= value < 1 << (8 * width):
            raise InvalidTransaction(f"{name} {field} {value!r} outside 0..{(1 << 8 * width) - 1}")
    return layout.pack(*values)


def unpack_fields(layout: struct.Struct, name: str, data: bytes) -> tuple[Any, ...]:
    if len(data) != layout.size:
        raise InvalidTransaction(f"{name} arguments are {len(data)} bytes, expected {layout.size}")
    return layout.unpack(data)


class Fixed:
    """A call whose arguments are one fixed-width layout, in field order."""

    __slots__ = ()
    LAYOUT: ClassVar[struct.Struct]
    NAME: ClassVar[str]

    def pack(self) -> bytes:
        names = [f.name for f in attrs.fields(type(self))]  # type: ignore[arg-type]
        values = attrs.astuple(self, recurse=False)  # type: ignore[arg-type]
        return pack_fields(self.LAYOUT, self.NAME, names, values)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls(*unpack_fields(cls.LAYOUT, cls.NAME, data))


ROW_BODY = struct.Struct("<BBIIqq32s32s")
"""The replay row without its dense ids: ``op flags asset asset2 amount min_out acc0 acc1``.
Its kernel sees four balance slots, (acc0, asset) (acc1, asset) (acc0, asset2) (acc1, asset2),
and the two integers ``amount`` and ``min_out``."""


def row_body(
    op: int, asset: int, asset2: int, amount: int, min_out: int, acc0: bytes, acc1: bytes
) -> bytes:
    """A replay-row body (see :data:`ROW_BODY`)."""
    return ROW_BODY.pack(op, 0, asset, asset2, amount, min_out, acc0, acc1)


MAX_WIDTH = 8
"""The most accounts one operation's access set (and so its replay row) may hold."""


def body_size(width: int) -> int:
    """Bytes of a replay-row body naming ``width`` accounts (see :func:`wide_row_body`)."""
    return ROW_BODY.size + 40 * (width - 2)


def wide_row_body(
    op: int, asset: int, asset2: int, accounts: Sequence[bytes], ints: Sequence[int]
) -> bytes:
    """The replay-row body of an op of width ``len(accounts)`` (3..8): :data:`ROW_BODY` with
    ``ints[0]``/``ints[1]`` as ``amount``/``min_out`` and ``accounts[0]``/``accounts[1]`` as
    ``acc0``/``acc1``, then the other accounts (32 bytes each), then ``ints[2:]`` (i64 each).
    ``ints`` holds as many integers as there are accounts. Its kernel sees, per account ``j``,
    slots ``a[j]`` = (account j, asset) and ``b[j]`` = (account j, asset2), and ``v[j]`` =
    ``ints[j]`` (see :class:`OpSpec`)."""
    w = len(accounts)
    if not 2 <= w <= MAX_WIDTH or len(ints) != w:
        raise ValueError(f"a row names 2..{MAX_WIDTH} accounts and as many integers")
    head = ROW_BODY.pack(op, 0, asset, asset2, ints[0], ints[1], accounts[0], accounts[1])
    return head + b"".join(accounts[2:]) + struct.pack(f"<{w - 2}q", *ints[2:])


class DnnHost(Protocol):
    """What DNN semantics need from outside the balance table: property-check verdicts and
    inference results (both deterministic functions of blobs named on chain)."""

    def verdict(self, job: bytes, weights: bytes) -> Status:
        """APPLIED if the weights pass the job's check, else CLAIM_REJECTED or JOB_INVALID."""
        ...

    def classes(self, job: bytes, claim: int, inputs: bytes, count: int) -> list[int] | Status:
        """Class ids of the ``count`` samples of ``inputs`` under the weights of the claim at
        packed position ``claim``; a Status if the input does not fit."""
        ...

    def terms(self, job: bytes) -> tuple[int, int]:
        """The (asset, bounty) a job escrowed."""
        ...


@attrs.frozen
class Context:
    """What an operation's semantics may read besides balances and its own arguments."""

    genesis: Genesis
    sender: bytes
    tx_id: bytes = b""
    position: int = 0
    host: DnnHost | None = None
    jobs: Callable[[bytes], Any] | None = None
    """The job index (job account -> :class:`lazyledger.ops.dnn.JobInfo`), for row encoding."""


Apply = Callable[[Balances, Context, Any], int]
"""An op's normative semantics: apply a call to the state in place (only if it succeeds)."""
RowOf = Callable[[Context, Any], bytes]
"""An op's replay-row body (:data:`ROW_BODY`) for a validated call."""


def _reasons(items: Mapping[int, str]) -> dict[int, str]:
    return dict(items)


@attrs.frozen
class OpSpec:
    """One operation, declared once: everything else (codec decoding, validation, the private
    call rules, the replay kernel's dispatch, hosted and light-client sets) derives from it.

    ``kernel`` is a Numba function ``(bal, a0, a1, b0, b1, amount, min_out) -> status`` of a
    row's four balance slots and two integers (see :data:`ROW_BODY`) that updates ``bal``
    only if it succeeds. An op whose access set may hold more than two accounts declares its
    ``width`` (3..8, the most accounts its row names; :func:`wide_row_body`), and its kernel
    is ``(bal, a, b, v) -> status`` over arrays: slots ``a[j]``/``b[j]`` of account ``j`` in
    ``asset``/``asset2`` and integers ``v[j]`` (a chain's rows are as wide as its widest op,
    so the arrays may be longer than ``width``: the extra accounts repeat ``acc0``, the extra
    integers are 0); the library composes every registered kernel into the replay kernel
    (:mod:`lazyledger.materialize.kernel`). It must agree with ``apply`` bit for bit (the
    conformance test checks every registered op). An op without a kernel is applied by a
    Python host at replay (``hosted``: DNN claims and inferences) or opened first (private)."""

    code: int
    name: str
    call: type[Any] | None
    """The call class (``OP``, ``pack``/``unpack``, ``access``, ``check``); None for an op that
    only ever appears in replay rows."""
    apply: Apply | None = None
    row: RowOf | None = None
    kernel: Any = None
    hosted: bool = False
    """Replay hands these rows to a Python host (they need blobs and model checks)."""
    stored_whole: bool = False
    """Ingestion keeps the canonical bytes (replay needs more than the row)."""
    sealable: bool = False
    """May travel sealed inside a private transaction."""
    light: bool = False
    """A light client replays it from a proven slice (its semantics read nothing but
    balances, genesis and its arguments)."""
    reasons: Mapping[int, str] = attrs.field(factory=dict, converter=_reasons)
    """Failure statuses of the op's own (codes 128..255) and the reasons receipts give."""
    width: int = 2
    """The most accounts a call's access set (and its replay row) names: 2..8."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.code, int) or not 0 < self.code < 256:
            raise InvalidOpSpec(f"op {self.name}: code {self.code!r} outside 1..255")
        if self.call is not None and getattr(self.call, "OP", None) != self.code:
            raise InvalidOpSpec(f"op {self.name}: its call class declares another code")
        if not isinstance(self.width, int) or not 2 <= self.width <= MAX_WIDTH:
            raise InvalidOpSpec(f"op {self.name}: width {self.width!r} outside 2..{MAX_WIDTH}")
        if self.width > 2 and (self.hosted or self.sealable or self.stored_whole):
            raise InvalidOpSpec(
                f"op {self.name}: an op wider than 2 accounts runs in the kernel, unsealed"
            )
        if self.light and (self.kernel is None or self.apply is None):
            raise InvalidOpSpec(f"op {self.name}: a light-client op needs a kernel and apply")
        for code, text in self.reasons.items():
            if not isinstance(code, int) or not OWN_STATUSES <= code < 256 or not text:
                raise InvalidOpSpec(
                    f"op {self.name}: its own statuses are codes {OWN_STATUSES}..255 with a reason"
                )

    def definition(self) -> bytes:
        """A hash of everything that fixes this op's bytes and meaning: code, name, argument
        layout, flags, and the source of its call class, ``apply``, ``row`` and ``kernel``.
        Genesis records it for embedder ops; a changed definition is another chain."""
        h = blake3.blake3(derive_key_context="lazyledger 2026 op definition v1")
        layout = getattr(self.call, "LAYOUT", None)
        flags = (self.hosted, self.stored_whole, self.sealable, self.light)
        h.update(f"{self.code}|{self.name}|{getattr(layout, 'format', '-')}|{flags}".encode())
        if self.width != 2:
            h.update(f"|width {self.width}".encode())
        for code, text in sorted(self.reasons.items()):
            h.update(f"|{code}:{text}".encode())
        for part in (self.call, self.apply, self.row, getattr(self.kernel, "py_func", None)):
            if part is None:
                h.update(b"|-")
                continue
            try:
                source = inspect.getsource(part)
            except (OSError, TypeError):
                raise InvalidOpSpec(f"op {self.name}: no source for {part!r}") from None
            h.update(b"|" + source.encode())
        return h.digest()

    @property
    def declared(self) -> tuple[int, bytes]:
        """``(code, definition())``: what ``Genesis.ops`` records of this op."""
        return self.code, self.definition()
