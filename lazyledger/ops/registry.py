"""The op registry: every :class:`OpSpec` this process knows, by code. Decoding, validation, the
private-call rules, replay dispatch and the light client's op set all read it.

The registry is process-wide, like a codec table: the built-in ops, plus the embedder ops of
every ledger opened in the process (:func:`adopt`). A chain runs only the built-ins and the ops
its genesis declares (validation refuses the rest), so one process can hold ledgers of chains
with different ops, as long as no two give one code different definitions."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lazyledger.codec import set_call_decoder
from lazyledger.errors import InvalidOpSpec, InvalidTransaction, OpsMismatch
from lazyledger.ops import dnn, private, swap, transfer
from lazyledger.ops.base import REASONS, Balances, Context, OpSpec, body_size

if TYPE_CHECKING:
    from lazyledger.model import Genesis


class Registry:
    """Operations with distinct codes and names: the built-ins, then embedder ops added one by
    one (:meth:`add`); an op is never removed or replaced."""

    def __init__(self, specs: Iterable[OpSpec]) -> None:
        self.specs: dict[int, OpSpec] = {}
        self.version = 0
        """Bumped by every :meth:`add` (the replay kernel is recomposed on change)."""
        self._definitions: dict[int, bytes] = {}
        names: set[str] = set()
        for spec in specs:
            if spec.code in self.specs or spec.name in names:
                raise InvalidOpSpec(f"op {spec.name} (code {spec.code}) is registered twice")
            self.specs[spec.code] = spec
            names.add(spec.name)
        self._derive()

    def _derive(self) -> None:
        self.specs = dict(sorted(self.specs.items()))
        self.names = {s.name: s.code for s in self.specs.values()}
        self.hosted = frozenset(c for c, s in self.specs.items() if s.hosted)
        self.stored_whole = frozenset(c for c, s in self.specs.items() if s.stored_whole)
        self.sealable = frozenset(c for c, s in self.specs.items() if s.sealable)
        self.light = frozenset(c for c, s in self.specs.items() if s.light)
        self.kernels = {c: s.kernel for c, s in self.specs.items() if s.kernel is not None}
        self.wide = frozenset(c for c, s in self.specs.items() if s.width > 2)
        """Ops whose kernels take slot and integer arrays (``OpSpec.width`` above 2)."""
        self.opaque = frozenset(c for c, s in self.specs.items() if s.kernel is None)
        """Ops whose rows the kernel cannot apply alone (hosted, or sealed until opened)."""
        self.reasons = dict(REASONS)
        for s in self.specs.values():
            self.reasons.update(s.reasons)

    def __iter__(self) -> Iterator[OpSpec]:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def add(self, spec: OpSpec) -> None:
        """Register an embedder op: it needs a call class, ``apply``, ``row`` and ``kernel`` (no
        Python host), a free code, a free name and status codes that keep their meaning. Adding
        the same definition again is a no-op; another definition under a taken code is
        :class:`OpsMismatch`."""
        definition = spec.definition()
        known = self.specs.get(spec.code)
        if known is not None:
            if self._definitions.get(spec.code) == definition:
                return
            raise OpsMismatch(
                f"op code {spec.code} already runs {known.name!r} in this process"
                f" (another definition than {spec.name!r})"
            )
        if spec.name in self.names:
            raise OpsMismatch(f"op name {spec.name!r} is taken by code {self.names[spec.name]}")
        if spec.call is None or spec.apply is None or spec.row is None or spec.kernel is None:
            raise InvalidOpSpec(f"op {spec.name}: an embedder op needs call, apply, row and kernel")
        if spec.hosted or spec.stored_whole:
            raise InvalidOpSpec(f"op {spec.name}: embedder ops run in the kernel (not hosted)")
        for code, text in spec.reasons.items():
            if self.reasons.get(code, text) != text:
                raise OpsMismatch(
                    f"op {spec.name}: status {code} already means {self.reasons[code]!r} here"
                )
        self.specs[spec.code] = spec
        self._definitions[spec.code] = definition
        self._derive()
        self.version += 1

    def spec(self, op: int) -> OpSpec:
        found = self.specs.get(op)
        if found is None or found.call is None:
            raise InvalidTransaction(f"unknown operation code {op}")
        return found

    def unpack_call(self, op: int, data: bytes) -> Any:
        """Decode an operation's argument bytes; raises InvalidTransaction on any mismatch."""
        call = self.spec(op).call
        assert call is not None
        return call.unpack(data)

    def unpack_sealed(self, data: bytes) -> Any:
        """Decode ``op || args`` of a call sealed in a private transaction."""
        if not data:
            raise InvalidTransaction("empty call")
        spec = self.spec(data[0])
        if not spec.sealable:
            raise InvalidTransaction(f"a {spec.name} call cannot be sealed in a private call")
        return self.unpack_call(data[0], data[1:])

    def reason(self, status: int) -> str:
        """What a receipt says of ``status`` ("" when applied)."""
        return self.reasons.get(status, f"status {status}")

    def apply(self, state: Balances, ctx: Context, call: Any) -> int:
        """The normative semantics of ``call`` (see each op's module)."""
        fn = self.spec(call.OP).apply
        if fn is None:
            raise TypeError(f"{type(call).__name__} has no direct semantics (open it first)")
        return fn(state, ctx, call)

    def row_body(self, ctx: Context, call: Any) -> bytes:
        """The replay-row body of a validated call."""
        spec = self.spec(call.OP)
        if spec.row is None:  # pragma: no cover - every transaction op declares one
            raise TypeError(f"no replay row for {type(call).__name__}")
        body = spec.row(ctx, call)
        if len(body) != body_size(spec.width) or body[0] != spec.code:
            raise InvalidOpSpec(
                f"op {spec.name}: its replay row is not a width-{spec.width} row of its code"
            )
        return body

    def width(self, genesis: Genesis) -> int:
        """Accounts per replay row on a chain: its widest op's width (2 for built-ins only).
        The chain's embedder ops must be adopted (:func:`adopt`)."""
        out = 2
        for code, _ in genesis.ops:
            spec = self.specs.get(code)
            if spec is None:
                raise OpsMismatch(f"genesis declares op {code}, which this process does not run")
            out = max(out, spec.width)
        return out


BUILTIN: tuple[OpSpec, ...] = (*transfer.SPECS, *swap.SPECS, *dnn.SPECS, *private.SPECS)
BUILTIN_CODES = frozenset(spec.code for spec in BUILTIN)
"""Codes taken by built-in operations (and the row-only FAIL)."""
REGISTRY = Registry(BUILTIN)
"""The operations this process runs: the built-ins and every adopted embedder op."""
set_call_decoder(REGISTRY.unpack_call)
_ADOPT = threading.Lock()


def adopt(genesis: Genesis, ops: Sequence[OpSpec] | None) -> tuple[OpSpec, ...]:
    """Check that ``ops`` are exactly the embedder ops ``genesis`` declares (code and
    definition) and register them in this process; :class:`OpsMismatch` names any difference."""
    if ops is not None and not isinstance(ops, list | tuple):
        raise InvalidOpSpec(f"ops must be a list or tuple of OpSpec, got {type(ops).__name__}")
    given = tuple(ops or ())
    declared = dict(genesis.ops)
    offered = {}
    for spec in given:
        if not isinstance(spec, OpSpec):
            raise InvalidOpSpec(f"ops must be OpSpec declarations, got {type(spec).__name__}")
        offered[spec.code] = spec
    missing = sorted(set(declared) - set(offered))
    extra = sorted(set(offered) - set(declared))
    if missing or extra:
        raise OpsMismatch(
            f"genesis declares embedder ops {sorted(declared)}; given {sorted(offered)}"
            + (f" (missing {missing})" if missing else "")
            + (f" (not declared {extra})" if extra else "")
        )
    for code, spec in sorted(offered.items()):
        if spec.definition() != declared[code]:
            raise OpsMismatch(
                f"op {spec.name} (code {code}) is not the definition genesis declares"
                " (its layout, flags or source changed)"
            )
    with _ADOPT:
        for _, spec in sorted(offered.items()):
            REGISTRY.add(spec)
    return tuple(spec for _, spec in sorted(offered.items()))
