"""The table registry: every LMDB database declared once, with its environment and the typed
codecs of its keys and values, as reth's ``tables!`` does. Every read and write of a table goes
through these codecs (:meth:`lazyledger.store.Env.get` and friends), and DESIGN.md's table list
is :func:`markdown` of this registry.

Integer keys are big-endian so they sort in chain order. A table marked ``zstd`` stores its
encoded values compressed (by the store, which owns the compression contexts)."""

from __future__ import annotations

import json
import struct
from typing import Any, Generic, TypeVar

import attrs
import numpy as np
import zstandard

from lazyledger.errors import StorageError
from lazyledger.model import Header, Transaction
from lazyledger.ops import JobInfo

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_U64 = struct.Struct(">Q")
_JOB = struct.Struct(">QIQ32s??")
_VERDICT = struct.Struct(">BII")
_CHECKPOINT_KEY = struct.Struct(">QI")


class Codec(Generic[T]):
    """How one key or value of a table reads: ``encode`` gives the stored bytes, ``decode``
    reads them back (StorageError when they are malformed). ``doc`` is its DESIGN.md cell."""

    doc: str

    def encode(self, value: T) -> bytes:
        raise NotImplementedError

    def decode(self, raw: bytes) -> T:
        raise NotImplementedError


@attrs.frozen
class U64(Codec[int]):
    """An unsigned integer, 8 bytes big-endian (sorts numerically)."""

    name: str

    @property
    def doc(self) -> str:  # type: ignore[override]
        return f"{self.name}:u64"

    def encode(self, value: int) -> bytes:
        return _U64.pack(value)

    def decode(self, raw: bytes) -> int:
        if len(raw) != 8:
            raise StorageError(f"a {self.name} of {len(raw)} bytes (8 expected)")
        return int(_U64.unpack(raw)[0])


@attrs.frozen
class Fixed(Codec[bytes]):
    """Bytes of one fixed length (ids and hashes)."""

    size: int
    doc: str

    def encode(self, value: bytes) -> bytes:
        if len(value) != self.size:
            raise StorageError(f"a key of {len(value)} bytes ({self.size} expected)")
        return bytes(value)

    def decode(self, raw: bytes) -> bytes:
        if len(raw) != self.size:
            raise StorageError(f"a key of {len(raw)} bytes ({self.size} expected)")
        return bytes(raw)


@attrs.frozen
class Raw(Codec[bytes]):
    """Bytes whose form a higher layer reads (a section, an index record, a blob)."""

    doc: str

    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, raw: bytes) -> bytes:
        return bytes(raw)


@attrs.frozen
class Name(Codec[str]):
    """An ASCII name (the keys of the ``info`` tables)."""

    doc: str = "ascii name"

    def encode(self, value: str) -> bytes:
        return value.encode("ascii")

    def decode(self, raw: bytes) -> str:
        try:
            return bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            raise StorageError(f"an info name that is not ASCII: {bytes(raw)!r}") from None


@attrs.frozen
class Field(Generic[T]):
    """One named entry of an ``info`` table, with its own codec (``doc``: its DESIGN.md text,
    default the codec's)."""

    name: str
    codec: Codec[T]
    note: str = ""

    @property
    def doc(self) -> str:
        return self.note or self.codec.doc


@attrs.frozen
class Info(Codec[bytes]):
    """The values of an ``info`` table: each name is a :class:`Field` with its own codec; read
    and write them with :meth:`lazyledger.store.Env.get_field` and ``put_field``."""

    fields: tuple[Field[Any], ...]

    @property
    def doc(self) -> str:  # type: ignore[override]
        return ", ".join(f.doc for f in self.fields)

    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, raw: bytes) -> bytes:
        return bytes(raw)


@attrs.frozen
class Zstd(Codec[bytes]):
    """Bytes stored as one zstd frame (``zstandard.compress``, level 3; the genesis)."""

    name: str

    @property
    def doc(self) -> str:  # type: ignore[override]
        return f"{self.name} (zstd)"

    def encode(self, value: bytes) -> bytes:
        return zstandard.compress(value, 3)

    def decode(self, raw: bytes) -> bytes:
        try:
            return zstandard.decompress(raw)
        except zstandard.ZstdError:
            raise StorageError(f"the {self.name} is not a zstd frame") from None


class HeaderCodec(Codec[Header]):
    doc = "canonical header bytes"

    def encode(self, value: Header) -> bytes:
        return value.to_bytes()

    def decode(self, raw: bytes) -> Header:
        return Header.from_bytes(bytes(raw))


class TransactionCodec(Codec[Transaction]):
    doc = "canonical bytes of a private or DNN transaction"

    def encode(self, value: Transaction) -> bytes:
        return value.raw

    def decode(self, raw: bytes) -> Transaction:
        return Transaction.from_bytes(bytes(raw))


class JobCodec(Codec[JobInfo]):
    doc = "position:u64, bounty asset:u32, bounty:u64, owner:32, hidden:u8, revealed:u8"

    def encode(self, value: JobInfo) -> bytes:
        v = value
        return _JOB.pack(v.position, v.asset, v.bounty, v.owner, v.hidden, v.revealed)

    def decode(self, raw: bytes) -> JobInfo:
        if len(raw) != _JOB.size:
            raise StorageError(f"a job-index entry of {len(raw)} bytes ({_JOB.size} expected)")
        return JobInfo(*_JOB.unpack(raw))


Verdict = tuple[int, int, int]
"""(status, correct, total) of a checked claim."""


class VerdictCodec(Codec[Verdict]):
    doc = "status:u8, correct:u32, total:u32"

    def encode(self, value: Verdict) -> bytes:
        return _VERDICT.pack(*value)

    def decode(self, raw: bytes) -> Verdict:
        if len(raw) != _VERDICT.size:
            raise StorageError(f"a verdict of {len(raw)} bytes ({_VERDICT.size} expected)")
        status, correct, total = _VERDICT.unpack(raw)
        return int(status), int(correct), int(total)


CheckpointKey = tuple[int, int]
"""(packed position, first account id of the batch)."""


class CheckpointKeyCodec(Codec[CheckpointKey]):
    doc = "packed position:u64, first account id:u32"

    def encode(self, value: CheckpointKey) -> bytes:
        return _CHECKPOINT_KEY.pack(*value)

    def decode(self, raw: bytes) -> CheckpointKey:
        if len(raw) != _CHECKPOINT_KEY.size:
            raise StorageError(f"a checkpoint key of {len(raw)} bytes (12 expected)")
        position, first = _CHECKPOINT_KEY.unpack(raw)
        return int(position), int(first)


Holdings = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(account ids, holdings per account, assets, values): checkpoints of several accounts,
holdings listed account by account."""


class CheckpointBatchCodec(Codec[Holdings]):
    """n:u32, ids u32[n], counts u32[n], assets u32[m], values i64[m] (little-endian)."""

    doc = "a batch of checkpoints taken at that position (columnar; see below)"

    def encode(self, value: Holdings) -> bytes:
        ids, counts, assets, values = value
        return b"".join(
            (
                np.uint32(len(ids)).tobytes(),
                ids.astype("<u4").tobytes(),
                counts.astype("<u4").tobytes(),
                assets.astype("<u4").tobytes(),
                values.astype("<i8").tobytes(),
            )
        )

    def decode(self, raw: bytes) -> Holdings:
        if len(raw) < 4:
            raise StorageError("a checkpoint batch shorter than its count")
        n = int(np.frombuffer(raw, "<u4", 1)[0])
        if len(raw) < 4 + 8 * n:
            raise StorageError("a checkpoint batch shorter than its ids")
        ids = np.frombuffer(raw, "<u4", n, 4).astype(np.int64)
        counts = np.frombuffer(raw, "<u4", n, 4 + 4 * n).astype(np.int64)
        m = int(counts.sum())
        if len(raw) != 4 + 8 * n + 12 * m:
            raise StorageError("a checkpoint batch of the wrong length")
        at = 4 + 8 * n
        assets = np.frombuffer(raw, "<u4", m, at).astype(np.int64)
        values = np.frombuffer(raw, "<i8", m, at + 4 * m).astype(np.int64)
        return ids, counts, assets, values


@attrs.frozen
class Table(Generic[K, V]):
    """A named LMDB database: the environment it lives in and the codecs of its keys and
    values (``zstd``: values are stored compressed)."""

    name: str
    env: str  # "meta", "shard", "cache" or "blobs"
    key: Codec[K]
    value: Codec[V]
    zstd: bool = False

    @property
    def value_doc(self) -> str:
        return f"zstd({self.value.doc})" if self.zstd else self.value.doc

    def row(self) -> str:
        """This table's line in DESIGN.md's table list."""
        return f"| {self.name} | {self.env} | {self.key.doc} | {self.value_doc} |"


class JsonDirs(Codec["list[str] | None"]):
    doc = "shard_dirs (JSON)"

    def encode(self, value: list[str] | None) -> bytes:
        return json.dumps(value).encode()

    def decode(self, raw: bytes) -> list[str] | None:
        try:
            found: Any = json.loads(bytes(raw))
        except ValueError:
            raise StorageError("the shard directories are not JSON") from None
        if found is not None and not (
            isinstance(found, list) and all(isinstance(d, str) for d in found)
        ):
            raise StorageError("the shard directories are not a list of paths")
        return found


SCHEMA = Field("schema", U64("schema"))
GENESIS = Field("genesis", Zstd("genesis"))
HEAD = Field("head", U64("head"))
SHARD_DIRS = Field("shard_dirs", JsonDirs())
SHARD_HEAD = Field("head", U64("head"), "head:u64, the last height written to this shard")

META_INFO: Table[str, bytes] = Table(
    "info", "meta", Name(), Info((SCHEMA, GENESIS, HEAD, SHARD_DIRS))
)
HEADERS: Table[int, Header] = Table("headers", "meta", U64("height"), HeaderCodec())
JOBS: Table[bytes, JobInfo] = Table("jobs", "meta", Fixed(32, "job account:32"), JobCodec())
SHARD_INFO: Table[str, bytes] = Table("info", "shard", Name(), Info((SHARD_HEAD,)))
BODIES: Table[int, bytes] = Table(
    "bodies", "shard", U64("height"), Raw("canonical section bytes"), zstd=True
)
ROWS: Table[int, bytes] = Table(
    "rows",
    "shard",
    U64("height"),
    Raw("the section's index record: columnar rows, senders, tx id prefixes, new accounts; below"),
    zstd=True,
)
HOSTED: Table[int, Transaction] = Table(
    "hosted", "shard", U64("packed position"), TransactionCodec()
)
CHECKPOINTS: Table[CheckpointKey, Holdings] = Table(
    "checkpoints", "cache", CheckpointKeyCodec(), CheckpointBatchCodec()
)
VERDICTS: Table[bytes, Verdict] = Table(
    "verdicts", "cache", Fixed(64, "job account:32, weights hash:32"), VerdictCodec()
)
BLOBS: Table[bytes, bytes] = Table(
    "blobs", "blobs", Fixed(32, "blake3 hash:32"), Raw("blob bytes"), zstd=True
)

TABLES: tuple[Table[Any, Any], ...] = (
    META_INFO,
    HEADERS,
    JOBS,
    SHARD_INFO,
    BODIES,
    ROWS,
    HOSTED,
    CHECKPOINTS,
    VERDICTS,
    BLOBS,
)

ENVS = ("meta", "shard", "cache", "blobs")


def tables_of(env: str) -> tuple[Table[Any, Any], ...]:
    """The tables an environment of kind ``env`` holds."""
    return tuple(t for t in TABLES if t.env == env)


def max_dbs(env: str) -> int:
    """LMDB's ``max_dbs`` for an environment of kind ``env``: the tables it declares."""
    return len(tables_of(env))


def markdown() -> str:
    """DESIGN.md's table list, generated from the registry."""
    head = "| table | env | key | value |\n|---|---|---|---|\n"
    return head + "".join(t.row() + "\n" for t in TABLES)
