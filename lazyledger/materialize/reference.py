"""The pure-Python reference: replay every transaction of a chain with :func:`ops.apply`.

Slow and obviously correct; the Numba kernel, lazy slices and checkpoints are tested against it."""

from __future__ import annotations

from collections.abc import Iterable

from lazyledger.errors import PrivateStateUnavailable
from lazyledger.materialize.keyring import Keyring
from lazyledger.model import AccountState, Block, Genesis
from lazyledger.ops import REASONS, Private, Status, apply, balances_of, genesis_balances


def replay_chain(
    genesis: Genesis, blocks: Iterable[Block], keyring: Keyring | None = None
) -> tuple[dict[bytes, AccountState], dict[bytes, tuple[bool, str]]]:
    """States of every account seen, and (applied, reason) of every transaction, after
    ``blocks`` (in height order, starting at 1). Private transactions are opened with
    ``keyring``; one it cannot open raises PrivateStateUnavailable."""
    state = genesis_balances(genesis)
    nonces: dict[bytes, int] = {}
    receipts: dict[bytes, tuple[bool, str]] = {}
    seen = set(genesis.balances)
    for block in blocks:
        for section in block.sections:
            for tx in section:
                call = tx.call
                if isinstance(call, Private):
                    opened = (keyring or Keyring()).open(tx, genesis)
                    if opened is None:
                        raise PrivateStateUnavailable(None, [tx.id], None)
                    status = (
                        opened
                        if isinstance(opened, Status)
                        else apply(state, genesis, tx.sender, opened)
                    )
                else:
                    status = apply(state, genesis, tx.sender, call)
                receipts[tx.id] = (status == 0, REASONS[status])
                nonces[tx.sender] = nonces.get(tx.sender, 0) + 1
                seen.add(tx.sender)
                seen.update(tx.access())
    return (
        {a: AccountState(nonces.get(a, 0), balances_of(state, a)) for a in sorted(seen)},
        receipts,
    )
