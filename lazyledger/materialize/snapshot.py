"""Every account's state at one height, from one eager replay (``Ledger.replay_all``).

Balances stay in the replay's slot arrays and nonces in one array by dense id; an
:class:`~lazyledger.model.AccountState` is built only when asked for, so the eager baseline
costs one pass of the kernel over the chain plus vectorised bookkeeping, not a Python object
per account."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from lazyledger.materialize.replay import Replayed
from lazyledger.model import AccountState

Holdings = Mapping[int, int]


class Snapshot(Mapping[bytes, AccountState]):
    """A read-only mapping account -> state, ordered by account bytes. It holds no store
    handle: it stays valid after its ledger is closed."""

    def __init__(
        self,
        names: np.ndarray,
        seen: np.ndarray,
        nonces: np.ndarray,
        replayed: Replayed,
        genesis: Mapping[bytes, Holdings],
        others: Mapping[bytes, int],
    ) -> None:
        """``names``: account bytes (V32) by dense id; ``seen``: which ids the snapshot covers;
        ``nonces`` by dense id; ``others``: nonces of senders that have no dense id."""
        self._names = names
        self._seen = seen
        self._nonces = nonces
        self._replayed = replayed
        self._genesis = genesis
        self._others = dict(others)
        self._ids: dict[bytes, int] | None = None
        self._order: list[bytes] | None = None

    def _id_map(self) -> dict[bytes, int]:
        if self._ids is None:
            raw = self._names.tobytes()
            covered = np.flatnonzero(self._seen).tolist()
            self._ids = {raw[32 * i : 32 * i + 32]: i for i in covered}
        return self._ids

    def __getitem__(self, account: bytes) -> AccountState:
        k = self._id_map().get(bytes(account))
        if k is None:
            if account not in self._others:
                raise KeyError(account)
            return AccountState(self._others[account], {})
        nonce = int(self._nonces[k]) + self._others.get(account, 0)
        held = self._replayed.holdings(account, self._genesis.get(account, {}), k)
        return AccountState.split(nonce, held)

    def __iter__(self) -> Iterator[bytes]:
        if self._order is None:
            self._order = sorted({*self._id_map(), *self._others})
        return iter(self._order)

    def __len__(self) -> int:
        return len({*self._id_map(), *self._others})

    def __repr__(self) -> str:
        return f"Snapshot({len(self)} accounts)"
