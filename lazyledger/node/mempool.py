"""A bounded mempool of statelessly checked transactions, kept per sender in nonce order so a
proposer can always cut a block whose nonces are contiguous."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from lazyledger.errors import InvalidTransaction, LedgerError, StorageError
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
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._ids

    @property
    def nbytes(self) -> int:
        """Canonical bytes of every pending transaction together."""
        return self._bytes

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
            self._bytes += len(tx.raw)
            return True

    def pending(self) -> list[Transaction]:
        """Every pending transaction (a snapshot), by sender then nonce."""
        with self._lock:
            return [tx for run in self._by_sender.values() for _, tx in sorted(run.items())]

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
                    dropped = pending.pop(stale)
                    self._ids.discard(dropped.id)
                    self._bytes -= len(dropped.raw)
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
                    self._bytes -= len(pending.pop(tx.nonce).raw)
                    self._ids.discard(tx.id)
                if not pending:
                    del self._by_sender[tx.sender]


class Journal:
    """The mempool's append-only file: one hex line per admitted transaction, written before
    the node acknowledges it, so an acknowledged transaction survives a crash or kill of the
    node process (not a power loss: lines are not fsynced one by one). Replayed on start;
    rewritten without included and stale entries as blocks are stored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.lines = 0

    def load(self) -> list[bytes]:
        """The raw transactions of every complete, well-formed line (a torn last line from a
        crash mid-write is skipped)."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StorageError(f"cannot read the mempool journal {self.path}: {e}") from None
        out = []
        for line in text.split(b"\n")[:-1]:  # the part after the last newline is torn
            try:
                out.append(bytes.fromhex(line.decode("ascii")))
            except ValueError:
                continue
        return out

    def rewrite(self, txs: Iterable[Transaction]) -> None:
        """Replace the file with exactly ``txs`` (atomically: a temporary file, then rename)."""
        with self._lock:
            self._rewrite(list(txs))

    def _rewrite(self, txs: list[Transaction]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(b"".join(tx.raw.hex().encode() + b"\n" for tx in txs))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise StorageError(f"cannot write the mempool journal {self.path}: {e}") from None
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self.lines = fd, len(txs)

    def append(self, tx: Transaction) -> None:
        """Record an admitted transaction (one write call; StorageError if it fails)."""
        line = tx.raw.hex().encode() + b"\n"
        with self._lock:
            if self._fd is None:
                raise StorageError(f"the mempool journal {self.path} is closed")
            try:
                written = os.write(self._fd, line)
            except OSError as e:
                raise StorageError(f"cannot write the mempool journal {self.path}: {e}") from None
            if written != len(line):
                raise StorageError(f"short write to the mempool journal {self.path}")
            self.lines += 1

    def compact(self, mempool: Mempool, slack: int = 1024) -> bool:
        """Rewrite the file from ``mempool`` when the mempool is empty, or when the file holds
        ``slack`` more lines than twice the pending transactions (included and stale ones pile
        up); whether it did."""
        with self._lock:
            pending = len(mempool)
            if (
                self._fd is None
                or not self.lines
                or (pending and self.lines <= 2 * pending + slack)
            ):
                return False
            self._rewrite(mempool.pending())  # under the lock: no append lands in between
            return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
