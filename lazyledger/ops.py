"""The operation registry: codes, argument layouts, access sets, stateless checks, and the
pure-Python semantics that every fast path (the Numba kernel) is tested against.

Amounts and balances are integers in ``[0, MAX]``. A failing operation changes no balance."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

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
    TRANSFER_IF = 8
    DNN_JOB = 16
    DNN_CLAIM = 17
    DNN_INFER = 18
    DNN_REVEAL = 19
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

RESERVED_ASSETS = 0xF000_0000
"""Asset ids from here up are contract storage, not assets: genesis may not issue them."""
JOB_STATUS = 0xFFFF_FFFF
"""Storage key of a job account: 0 unfunded, 1 open, 2 closed (hidden validation set revealed
with no winner), 3 + packed position of the winning claim."""
JOB_OPEN, JOB_CLOSED, JOB_WON = 1, 2, 3
REGISTER_BASE = 0xFFFE_0000
MAX_REGISTER = 0xFFFF
"""Storage keys REGISTER_BASE + r hold inference results (class id + 1; 0 means empty)."""
MAX_INFER_SAMPLES = 16


class Call(Protocol):
    """The operation and arguments a transaction carries."""

    OP: ClassVar[Op]

    def pack(self) -> bytes: ...

    def access(self, sender: bytes) -> tuple[bytes, ...]: ...

    def check(self, genesis: Genesis, sender: bytes) -> None: ...


def _check_amount(name: str, value: int) -> None:
    if not 0 < value <= MAX:
        raise InvalidTransaction(f"{name} {value} outside 1..{MAX}")


def job_account(job_tx_id: bytes) -> bytes:
    """The account that escrows a DNN job's bounty and records its result."""
    import blake3

    return blake3.blake3(
        job_tx_id, derive_key_context="lazyledger 2026 dnn job account v1"
    ).digest()


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise InvalidTransaction(f"{name} must be a 32-byte blake3 hash, got {len(value)} bytes")


def _check_register(register: int, count: int) -> None:
    if not 1 <= count <= MAX_INFER_SAMPLES or not 0 <= register <= MAX_REGISTER + 1 - count:
        raise InvalidTransaction(
            f"registers {register}..{register + count - 1} outside 0..{MAX_REGISTER}"
            f" or count {count} outside 1..{MAX_INFER_SAMPLES}"
        )


def _check_asset(genesis: Genesis, asset: int) -> None:
    if asset not in genesis.assets:
        raise InvalidTransaction(f"unknown asset {asset}")


_WIDTHS: dict[str, list[tuple[str, int]]] = {}


def _widths(layout: struct.Struct) -> list[tuple[str, int]]:
    """Per field of ``layout``: its struct code and its width in bytes."""
    found = _WIDTHS.get(layout.format)
    if found is None:
        found = [
            (code, int(count or 1) if code == "s" else struct.calcsize(">" + code))
            for count, code in re.findall(r"(\d*)([a-zA-Z?])", layout.format)
        ]
        _WIDTHS[layout.format] = found
    return found


def _pack(layout: struct.Struct, name: str, fields: Sequence[str], values: Sequence[Any]) -> bytes:
    """``values`` packed by ``layout``, refusing (InvalidTransaction, naming the field) what
    struct would silently pad, cut or refuse with an opaque message: a byte string of another
    width, an integer outside its field."""
    for field, value, (code, width) in zip(fields, values, _widths(layout), strict=True):
        if code == "s":
            if not isinstance(value, bytes) or len(value) != width:
                got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
                raise InvalidTransaction(f"{name} {field} must be {width} bytes, got {got}")
        elif not isinstance(value, int) or not 0 <= value < 1 << (8 * width):
            raise InvalidTransaction(f"{name} {field} {value!r} outside 0..{(1 << 8 * width) - 1}")
    return layout.pack(*values)


def _fields(layout: struct.Struct, name: str, data: bytes) -> tuple[Any, ...]:
    if len(data) != layout.size:
        raise InvalidTransaction(f"{name} arguments are {len(data)} bytes, expected {layout.size}")
    return layout.unpack(data)


class _Fixed:
    """A call whose arguments are one fixed-width layout, in field order."""

    __slots__ = ()
    LAYOUT: ClassVar[struct.Struct]
    NAME: ClassVar[str]

    def pack(self) -> bytes:
        names = [f.name for f in attrs.fields(type(self))]  # type: ignore[arg-type]
        values = attrs.astuple(self, recurse=False)  # type: ignore[arg-type]
        return _pack(self.LAYOUT, self.NAME, names, values)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls(*_fields(cls.LAYOUT, cls.NAME, data))


def _check_account(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise InvalidTransaction(f"{name} must be a 32-byte account id, got {len(value)} bytes")


@attrs.frozen(slots=True)
class Transfer(_Fixed):
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
        _check_account("to", self.to)
        _check_asset(genesis, self.asset)
        _check_amount("amount", self.amount)


@attrs.frozen(slots=True)
class Mint(_Fixed):
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
        _check_account("to", self.to)
        _check_asset(genesis, self.asset)
        _check_amount("amount", self.amount)
        if genesis.assets[self.asset] != sender:
            raise InvalidTransaction(
                f"mint of asset {self.asset} by a sender that is not its issuer"
            )


@attrs.frozen(slots=True)
class Swap(_Fixed):
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


@attrs.frozen(slots=True)
class TransferIf(_Fixed):
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
        _check_account("to", self.to)
        _check_asset(genesis, self.asset)
        _check_amount("amount", self.amount)
        _check_register(self.register, 1)


@attrs.frozen(slots=True)
class DnnJob:
    """Post a training task: model spec, training and validation data (blob hashes), the
    accuracy threshold in permille, and a bounty escrowed from the sender into the job account.
    Access {sender, job account}."""

    spec: bytes
    train: bytes
    validation: bytes
    threshold_permille: int
    asset: int
    bounty: int
    hidden: bool = False
    """The validation set is withheld (only its hash is public) until the owner's dnn_reveal;
    claims are taken only before the reveal, so claimers cannot fit the test set."""
    OP: ClassVar[Op] = Op.DNN_JOB
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32s32sHIQB")

    def pack(self) -> bytes:
        names = ("spec", "train", "validation", "threshold_permille", "asset", "bounty", "hidden")
        return _pack(self.LAYOUT, "dnn_job", names, [getattr(self, n) for n in names])

    @classmethod
    def unpack(cls, data: bytes) -> DnnJob:
        spec, train, validation, threshold, asset, bounty, hidden = _fields(
            cls.LAYOUT, "dnn_job", data
        )
        if hidden not in (0, 1):
            raise InvalidTransaction(f"dnn_job hidden flag {hidden} is not 0 or 1")
        return cls(spec, train, validation, threshold, asset, bounty, bool(hidden))

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        raise TypeError("a job's access set needs its transaction id: use Transaction.access()")

    def check(self, genesis: Genesis, sender: bytes) -> None:
        for name in ("spec", "train", "validation"):
            _check_hash(name, getattr(self, name))
        if not 1 <= self.threshold_permille <= 1000:
            raise InvalidTransaction(
                f"threshold {self.threshold_permille} outside 1..1000 permille"
            )
        _check_asset(genesis, self.asset)
        _check_amount("bounty", self.bounty)


@attrs.frozen(slots=True)
class DnnClaim(_Fixed):
    """Claim a job's bounty with a weights blob. The first claim (in global order) whose weights
    pass the job's property check wins. Access {claimer, job account}."""

    job: bytes
    weights: bytes
    OP: ClassVar[Op] = Op.DNN_CLAIM
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32s")
    NAME: ClassVar[str] = "dnn_claim"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("job", self.job)
        _check_hash("weights", self.weights)


@attrs.frozen(slots=True)
class DnnInfer(_Fixed):
    """Run a job's accepted model on an input blob of ``count`` samples; class id + 1 of sample
    k goes to the sender's register ``register + k``. Access {sender, job account}."""

    job: bytes
    inputs: bytes
    register: int
    count: int
    OP: ClassVar[Op] = Op.DNN_INFER
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s32sHB")
    NAME: ClassVar[str] = "dnn_infer"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("job", self.job)
        _check_hash("inputs", self.inputs)
        _check_register(self.register, self.count)


@attrs.frozen(slots=True)
class DnnReveal(_Fixed):
    """The job owner publishes a hidden validation set (the blob its hash names) and closes
    the job to new claims. Access {sender, job account}."""

    job: bytes
    OP: ClassVar[Op] = Op.DNN_REVEAL
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">32s")
    NAME: ClassVar[str] = "dnn_reveal"

    def access(self, sender: bytes) -> tuple[bytes, ...]:
        return (sender, self.job)

    def check(self, genesis: Genesis, sender: bytes) -> None:
        _check_account("job", self.job)


@attrs.frozen(slots=True)
class JobInfo:
    """What the job index records of a job at ingestion (validators read it; never state)."""

    position: int
    asset: int
    bounty: int
    owner: bytes
    hidden: bool
    revealed: bool


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


PublicCall = Transfer | Mint | Swap | TransferIf
"""Calls that may be sealed inside a private transaction."""
AnyCall = Transfer | Mint | Swap | TransferIf | DnnJob | DnnClaim | DnnInfer | DnnReveal | Private
CALLS: dict[int, type[AnyCall]] = {
    Op.TRANSFER: Transfer,
    Op.MINT: Mint,
    Op.SWAP: Swap,
    Op.TRANSFER_IF: TransferIf,
    Op.DNN_JOB: DnnJob,
    Op.DNN_CLAIM: DnnClaim,
    Op.DNN_INFER: DnnInfer,
    Op.DNN_REVEAL: DnnReveal,
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
    if not isinstance(call, Transfer | Mint | Swap | TransferIf):
        raise InvalidTransaction(f"{type(call).__name__} cannot be sealed in a private call")
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
    if isinstance(call, TransferIf):
        if get((sender, REGISTER_BASE + call.register), 0) != call.equals + 1:
            return Status.CONDITION_FALSE
        call = Transfer(call.to, call.asset, call.amount)
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


def apply_job(state: Balances, sender: bytes, job: bytes, call: DnnJob) -> Status:
    """Escrow the bounty from the sender into the job account and open the job."""
    have = state.get((sender, call.asset), 0)
    if have < call.bounty:
        return Status.INSUFFICIENT_BALANCE
    held = state.get((job, call.asset), 0)
    if held + call.bounty > MAX:
        return Status.BALANCE_OVERFLOW
    state[(sender, call.asset)] = have - call.bounty
    state[(job, call.asset)] = held + call.bounty
    state[(job, JOB_STATUS)] = JOB_OPEN
    return Status.APPLIED


def apply_reveal(state: Balances, call: DnnReveal) -> Status:
    """Close an open job to new claims (its hidden validation set is now public)."""
    if state.get((call.job, JOB_STATUS), 0) == JOB_OPEN:
        state[(call.job, JOB_STATUS)] = JOB_CLOSED
    return Status.APPLIED


def apply_claim(
    state: Balances,
    sender: bytes,
    call: DnnClaim,
    terms: tuple[int, int],
    position: int,
    host: DnnHost,
) -> Status:
    """Pay the bounty to the first claim whose weights pass; record it as the job's result.
    The check runs only while the job is open."""
    if state.get((call.job, JOB_STATUS), 0) != JOB_OPEN:
        return Status.JOB_NOT_OPEN
    verdict = host.verdict(call.job, call.weights)
    if verdict != Status.APPLIED:
        return verdict
    asset, bounty = terms
    held = state.get((call.job, asset), 0)
    got = state.get((sender, asset), 0)
    if held < bounty:
        return Status.INSUFFICIENT_BALANCE
    if got + bounty > MAX:
        return Status.BALANCE_OVERFLOW
    state[(call.job, asset)] = held - bounty
    state[(sender, asset)] = state.get((sender, asset), 0) + bounty
    state[(call.job, JOB_STATUS)] = JOB_WON + position
    return Status.APPLIED


def apply_infer(state: Balances, sender: bytes, call: DnnInfer, host: DnnHost) -> Status:
    """Write the class ids the job's accepted model gives the inputs into sender registers."""
    status = state.get((call.job, JOB_STATUS), 0)
    if status < JOB_WON:
        return Status.NO_RESULT
    result = host.classes(call.job, status - JOB_WON, call.inputs, call.count)
    if isinstance(result, Status):
        return result
    for k, c in enumerate(result):
        state[(sender, REGISTER_BASE + call.register + k)] = c + 1
    return Status.APPLIED
