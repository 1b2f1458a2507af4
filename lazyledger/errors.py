"""One root exception and its tree. Every error lazyledger raises on purpose derives from
:class:`LedgerError` and carries the offending values as fields."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the library raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (worker processes, Ray actors): rebuild them with
        # their fields, whatever their constructor takes.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[LedgerError], args: tuple[object, ...], fields: dict[str, object]) -> object:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(fields)
    return exc


class InvalidTransaction(LedgerError):
    """A transaction is malformed, badly signed, or not admissible."""


class InvalidBlock(LedgerError):
    """A block is malformed, badly signed, or does not extend the chain."""


class InvalidBlockTransaction(InvalidBlock, InvalidTransaction):
    """A block is invalid because one of its transactions is; names shard and index."""

    def __init__(self, shard: int, index: int, reason: str) -> None:
        self.shard, self.index, self.reason = shard, index, reason
        super().__init__(f"transaction {index} of shard section {shard}: {reason}")


class InvalidRequest(LedgerError, ValueError):
    """A query names something malformed (an account id or hash that is not 32 bytes)."""


class InvalidGenesis(LedgerError):
    """The genesis description is inconsistent."""


class InvalidOpSpec(LedgerError, ValueError):
    """An operation's declaration is inconsistent (see ``OpSpec``)."""


class OpsMismatch(LedgerError):
    """The operations a ledger is opened with are not the ones its genesis declares, or an
    embedder op conflicts with one this process already runs (same code, other definition)."""


class StorageError(LedgerError):
    """The on-disk store cannot be used as asked (missing, wrong schema, full)."""


class ReadOnlyLedger(StorageError):
    """A write was asked of a read-only ledger handle."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: this handle is read-only (Ledger.open(..., readonly=True))")


class ReplicaMismatch(StorageError):
    """A replica (a follower's datadir a remote worker reads) holds another chain, or another
    block at the asked height, than the ledger that asked."""

    def __init__(self, replica: str, reason: str) -> None:
        self.replica, self.reason = replica, reason
        super().__init__(f"replica {replica}: {reason}")


class ReplicaBehind(StorageError):
    """A replica did not reach the asked height within the time it was given."""

    def __init__(self, replica: str, height: int, wanted: int, waited_s: float) -> None:
        self.replica, self.height, self.wanted, self.waited_s = replica, height, wanted, waited_s
        super().__init__(
            f"replica {replica} is at height {height}, still below {wanted} after {waited_s:g} s"
        )


class SchemaMismatch(StorageError):
    """The store was written with another schema version."""

    def __init__(self, found: int, expected: int) -> None:
        self.found, self.expected = found, expected
        super().__init__(f"store schema version {found}, this library reads {expected}")


class NotFound(LedgerError):
    """Asked-for data is not in the ledger; ``key`` says what was asked for."""

    def __init__(self, what: str, key: object) -> None:
        self.what, self.key = what, key
        shown = key.hex() if isinstance(key, bytes) else key
        super().__init__(f"no {what} {shown}")


class HeightOutOfRange(LedgerError):
    """A height beyond the chain head (or negative) was asked for."""

    def __init__(self, height: int, head: int) -> None:
        self.height, self.head = height, head
        super().__init__(f"height {height} is outside 0..{head}")


class PrivateStateUnavailable(LedgerError):
    """A state depends on private transactions this materialiser cannot read.

    ``blocking`` lists their ids (global order); ``last_known_height`` is the last height at
    which the state is still computable (None when the query was not for one account)."""

    def __init__(
        self, account: bytes | None, blocking: list[bytes], last_known_height: int | None
    ) -> None:
        self.account, self.blocking, self.last_known_height = account, blocking, last_known_height
        who = f"account {account.hex()[:16]}" if account else "this state"
        known = f"; known up to height {last_known_height}" if last_known_height is not None else ""
        ids = ", ".join(b.hex()[:16] for b in blocking[:8]) + (" ..." if len(blocking) > 8 else "")
        super().__init__(
            f"{who} depends on {len(blocking)} private transaction(s) this keyring cannot read: "
            f"{ids}{known}"
        )


class BlobMissing(NotFound):
    """Materialisation needs a blob this node does not hold; fetch it by ``key`` and retry.
    Every validator of a block held the blobs it references (the blob rule), so this means
    local data loss, or a claim on a hidden job judged before its reveal published the set."""

    def __init__(self, key: bytes) -> None:
        super().__init__("blob", key)


class BlobUnavailable(InvalidTransaction):
    """A transaction references a blob this node does not hold, or holds in a form that fails
    the blob rule (wrong hash, over the genesis bound, malformed for its kind): the
    transaction cannot enter a block until the blob is published. ``missing`` is True when
    the blob is simply not held (fetch it and try again)."""

    def __init__(self, blob: bytes, field: str, reason: str, missing: bool = False) -> None:
        self.blob, self.field, self.reason, self.missing = blob, field, reason, missing
        super().__init__(f"{field} blob {blob.hex()}: {reason}")
