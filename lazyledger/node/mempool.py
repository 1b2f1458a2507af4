"""A bounded mempool of statelessly checked transactions, kept per sender in nonce order so a
proposer can always cut a block whose nonces are contiguous."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from lazyledger.errors import InvalidTransaction, LedgerError
from lazyledger.model import Transaction


class MempoolFull(LedgerError):
    """The mempool holds ``capacity`` transactions already; retry later (HTTP 429)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        super().__init__(f"mempool is full ({capacity} transactions); retry later")


class NonceConflict(InvalidTransaction):
    """Another transaction with the same sender and nonce is already pending."""

    def __init__(self, nonce: int, pending: bytes) -> None:
        self.nonce, self.pending = nonce, pending
        super().__init__(f"nonce {nonce} is taken by pending transaction {pending.hex()}")


class Mempool:
    """Pending transactions by sender, then nonce. Thread-safe; never blocks on a full pool."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._by_sender: dict[bytes, dict[int, Transaction]] = {}
        self._ids: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._ids

    def add(self, tx: Transaction) -> bool:
        """Admit ``tx``; False if it is already pending (idempotent resubmission).
        Raises NonceConflict or MempoolFull."""
        with self._lock:
            if tx.id in self._ids:
                return False
            pending = self._by_sender.get(tx.sender)
            if pending is not None and tx.nonce in pending:
                raise NonceConflict(tx.nonce, pending[tx.nonce].id)
            if len(self._ids) >= self.capacity:
                raise MempoolFull(self.capacity)
            self._by_sender.setdefault(tx.sender, {})[tx.nonce] = tx
            self._ids.add(tx.id)
            return True

    def next_nonce(self, sender: bytes, committed: int) -> int:
        """The nonce that follows ``committed`` and this sender's contiguous pending run."""
        with self._lock:
            pending = self._by_sender.get(sender, {})
            n = committed
            while n in pending:
                n += 1
            return n

    def take(self, limit: int, nonce_of: Callable[[bytes], int]) -> list[Transaction]:
        """Up to ``limit`` transactions for the next block: per sender (in arrival order), the
        contiguous run from its next nonce. Stale ones (nonce already used) are dropped; ones
        after a gap wait. Nothing is removed: call :meth:`remove` once the block is stored."""
        out: list[Transaction] = []
        with self._lock:
            senders = list(self._by_sender.items())
        for sender, pending in senders:
            if len(out) >= limit:
                break
            n = nonce_of(sender)
            with self._lock:
                for stale in [k for k in pending if k < n]:
                    self._ids.discard(pending.pop(stale).id)
                if not pending:
                    self._by_sender.pop(sender, None)
                while n in pending and len(out) < limit:
                    out.append(pending[n])
                    n += 1
        return out

    def remove(self, txs: Iterable[Transaction]) -> None:
        """Forget transactions that are now in a block."""
        with self._lock:
            for tx in txs:
                pending = self._by_sender.get(tx.sender)
                if pending is None or pending.get(tx.nonce) is None:
                    continue
                if pending[tx.nonce].id == tx.id:
                    del pending[tx.nonce]
                    self._ids.discard(tx.id)
                if not pending:
                    del self._by_sender[tx.sender]
