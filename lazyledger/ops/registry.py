"""The op registry: every :class:`OpSpec` a ledger knows, by code. Decoding, validation, the
private-call rules, replay dispatch and the light client's op set all read it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import blake3

from lazyledger.errors import InvalidTransaction
from lazyledger.ops import dnn, private, swap, transfer
from lazyledger.ops.base import Balances, Context, OpSpec, Status


class Registry:
    """An immutable set of operations with distinct codes and names."""

    def __init__(self, specs: Iterable[OpSpec]) -> None:
        self.specs: dict[int, OpSpec] = {}
        names: set[str] = set()
        for spec in specs:
            if spec.code in self.specs or spec.name in names:
                raise ValueError(f"op {spec.name} (code {spec.code}) is registered twice")
            self.specs[spec.code] = spec
            names.add(spec.name)
        self.specs = dict(sorted(self.specs.items()))
        self.hosted = frozenset(c for c, s in self.specs.items() if s.hosted)
        self.stored_whole = frozenset(c for c, s in self.specs.items() if s.stored_whole)
        self.sealable = frozenset(c for c, s in self.specs.items() if s.sealable)
        self.light = frozenset(c for c, s in self.specs.items() if s.light)
        self.kernels = {c: s.kernel for c, s in self.specs.items() if s.kernel is not None}
        self.opaque = frozenset(c for c, s in self.specs.items() if s.kernel is None)
        """Ops whose rows the kernel cannot apply alone (hosted, or sealed until opened)."""

    def __iter__(self) -> Any:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def extended(self, extra: Iterable[OpSpec]) -> Registry:
        """This registry plus ``extra`` (an embedding chain's own ops)."""
        return Registry([*self.specs.values(), *extra])

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

    def apply(self, state: Balances, ctx: Context, call: Any) -> Status:
        """The normative semantics of ``call`` (see each op's module)."""
        fn = self.spec(call.OP).apply
        if fn is None:
            raise TypeError(f"{type(call).__name__} has no direct semantics (open it first)")
        return fn(state, ctx, call)

    def row_body(self, ctx: Context, call: Any) -> bytes:
        """The replay-row body of a validated call."""
        fn = self.spec(call.OP).row
        if fn is None:  # pragma: no cover - every transaction op declares one
            raise TypeError(f"no replay row for {type(call).__name__}")
        return fn(ctx, call)

    def digest(self) -> bytes:
        """A hash of every op's code, name, layout and flags (what genesis would record)."""
        h = blake3.blake3()
        for spec in self.specs.values():
            layout = getattr(spec.call, "LAYOUT", None)
            fmt = layout.format if layout is not None else "-"
            flags = (spec.hosted, spec.stored_whole, spec.sealable, spec.light)
            h.update(f"{spec.code}:{spec.name}:{fmt}:{flags}\n".encode())
        return h.digest()


BUILTIN: tuple[OpSpec, ...] = (*transfer.SPECS, *swap.SPECS, *dnn.SPECS, *private.SPECS)
REGISTRY = Registry(BUILTIN)
"""The built-in operations."""
