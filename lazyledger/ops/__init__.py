"""Operations: one :class:`OpSpec` per operation, one module per op family
(:mod:`~lazyledger.ops.transfer`, :mod:`~lazyledger.ops.swap`, :mod:`~lazyledger.ops.dnn`,
:mod:`~lazyledger.ops.private`), collected in :data:`REGISTRY`. Each declares its code, call
layout, access set, stateless check, pure-Python semantics (normative: every fast path is tested
against it), replay row and Numba kernel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lazyledger.model import MAX_REGISTER, REGISTER_BASE, RESERVED_ASSETS, Call, job_account
from lazyledger.ops.base import (
    FAIL,
    JOB_CLOSED,
    JOB_OPEN,
    JOB_STATUS,
    JOB_WON,
    MAX,
    MAX_WIDTH,
    REASONS,
    Balances,
    Context,
    DnnHost,
    Op,
    OpSpec,
    Status,
    row_body,
    wide_row_body,
)
from lazyledger.ops.dnn import (
    DnnClaim,
    DnnInfer,
    DnnJob,
    DnnReveal,
    JobInfo,
    apply_claim,
    apply_infer,
    apply_job,
    apply_reveal,
)
from lazyledger.ops.private import (
    MAX_ACCESS,
    MAX_CIPHERTEXT,
    MAX_RECIPIENTS,
    Private,
    resolve_private,
)
from lazyledger.ops.registry import BUILTIN, REGISTRY, Registry
from lazyledger.ops.swap import Swap, other_asset, swap_output
from lazyledger.ops.transfer import MAX_INFER_SAMPLES, Mint, Transfer, TransferIf

if TYPE_CHECKING:
    from lazyledger.model import Genesis

PublicCall = Transfer | Mint | Swap | TransferIf
"""The built-in calls that may be sealed inside a private transaction (``OpSpec.sealable``)."""
AnyCall = Transfer | Mint | Swap | TransferIf | DnnJob | DnnClaim | DnnInfer | DnnReveal | Private


def unpack_call(op: int, data: bytes) -> AnyCall:
    """Decode an operation's argument bytes; raises InvalidTransaction on any mismatch."""
    return REGISTRY.unpack_call(op, data)  # type: ignore[no-any-return]


def unpack_public_call(data: bytes) -> PublicCall:
    """Decode ``op || args`` of a call sealed in a private transaction."""
    return REGISTRY.unpack_sealed(data)  # type: ignore[no-any-return]


def apply(state: Balances, genesis: Genesis, sender: bytes, call: PublicCall) -> int:
    """Apply one sealable operation to ``state`` in place (only if it succeeds) and return its
    status: the normative semantics of DESIGN.md; the Numba kernel agrees with it bit for bit."""
    return REGISTRY.apply(state, Context(genesis, sender), call)


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


__all__ = [
    "BUILTIN",
    "FAIL",
    "JOB_CLOSED",
    "JOB_OPEN",
    "JOB_STATUS",
    "JOB_WON",
    "MAX",
    "MAX_ACCESS",
    "MAX_CIPHERTEXT",
    "MAX_INFER_SAMPLES",
    "MAX_RECIPIENTS",
    "MAX_REGISTER",
    "MAX_WIDTH",
    "REASONS",
    "REGISTER_BASE",
    "REGISTRY",
    "RESERVED_ASSETS",
    "AnyCall",
    "Balances",
    "Call",
    "Context",
    "DnnClaim",
    "DnnHost",
    "DnnInfer",
    "DnnJob",
    "DnnReveal",
    "JobInfo",
    "Mint",
    "Op",
    "OpSpec",
    "Private",
    "PublicCall",
    "Registry",
    "Status",
    "Swap",
    "Transfer",
    "TransferIf",
    "apply",
    "apply_claim",
    "apply_infer",
    "apply_job",
    "apply_reveal",
    "balances_of",
    "genesis_balances",
    "job_account",
    "other_asset",
    "resolve_private",
    "row_body",
    "swap_output",
    "unpack_call",
    "unpack_public_call",
    "wide_row_body",
]
