"""LMDB storage: one environment for chain metadata, one per shard, one for derived caches.

Every table is declared once in ``TABLES`` with its key and value encoding (integers are
big-endian so keys sort in chain order). A block is written shard environments first, then the
metadata environment, whose commit is the commit point: on open, shard writes above the
committed head (a crash between the two) are rolled back, so no torn block is ever visible."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import blake3
import lmdb
import zstandard

from lazyledger.errors import ReadOnlyLedger, SchemaMismatch, StorageError

SCHEMA_VERSION = 6
DEFAULT_MAP_SIZE = 64 << 30

_U64 = struct.Struct(">Q")
_HOLDING = struct.Struct(">IQ")


@attrs.frozen
class Table:
    """A named LMDB database: the environment it lives in and how its keys and values read."""

    name: str
    env: str  # "meta", "shard", "cache" or "blobs"
    key: str
    value: str


TABLES = (
    Table(
        "info",
        "meta",
        "ascii name",
        "schema:u64 | genesis:zstd | head:u64 | shard_dirs:json",
    ),
    Table("headers", "meta", "height:u64", "canonical header bytes"),
    Table(
        "jobs",
        "meta",
        "job account:32",
        "position:u64 bounty asset:u32 bounty:u64 owner:32 hidden:u8 revealed:u8",
    ),
    Table("info", "shard", "ascii name", "head:u64 (last height written to this shard)"),
    Table("bodies", "shard", "height:u64", "zstd(canonical section bytes)"),
    Table(
        "rows",
        "shard",
        "height:u64",
        "zstd(the section's index record: columnar rows, senders, tx id prefixes, new accounts)",
    ),
    Table("hosted", "shard", "packed position:u64", "canonical bytes of a private or DNN tx"),
    Table(
        "checkpoints",
        "cache",
        "packed position:u64 first account id:u32",
        "a batch of holdings before that position (materialize.index.encode_batch)",
    ),
    Table("verdicts", "cache", "job account:32 weights hash:32", "status:u8 correct:u32 total:u32"),
    Table("blobs", "blobs", "blake3 hash:32", "zstd(blob bytes)"),
)

_OPEN: set[str] = set()
_OPEN_LOCK = threading.Lock()


def u64(n: int) -> bytes:
    return _U64.pack(n)


Buf = bytes | memoryview
"""What LMDB hands back (always ``bytes`` here: transactions are opened with buffers=False)."""


def get(txn: lmdb.Transaction, key: bytes, db: Any) -> bytes | None:
    """``txn.get`` typed as bytes."""
    value = txn.get(key, db=db)
    return None if value is None else bytes(value)


def need(txn: lmdb.Transaction, key: bytes, db: Any, what: str) -> bytes:
    """A value that must exist; its absence means the store is damaged."""
    value = txn.get(key, db=db)
    if value is None:
        raise StorageError(f"the store is missing {what} (key {key.hex()})")
    return bytes(value)


def read_u64(b: Buf, at: int = 0) -> int:
    return int(_U64.unpack_from(b, at)[0])


def seal(key: bytes, value: bytes) -> bytes:
    """A cache value with a checksum of key and value: the cache environment skips fsync, so
    after a system crash a damaged entry is detected and ignored (it is derived data)."""
    return value + blake3.blake3(key + value).digest()[:16]


def unseal(key: bytes, stored: Buf | None) -> bytes | None:
    """The value of a sealed cache entry, or None if absent or damaged."""
    if stored is None or len(stored) < 16:
        return None
    data = bytes(stored)
    value = data[:-16]
    return value if blake3.blake3(key + value).digest()[:16] == data[-16:] else None


def encode_holdings(held: dict[int, int]) -> bytes:
    items = sorted((a, v) for a, v in held.items() if v)
    return struct.pack(">H", len(items)) + b"".join(_HOLDING.pack(a, v) for a, v in items)


def decode_holdings(data: Buf) -> dict[int, int]:
    (n,) = struct.unpack_from(">H", data)
    return dict(_HOLDING.unpack_from(data, 2 + 12 * i) for i in range(n))


class Env:
    """One LMDB environment with its declared tables."""

    def __init__(
        self, path: Path, kind: str, map_size: int, create: bool, readonly: bool = False
    ) -> None:
        self.path, self.kind, self.readonly = path, kind, readonly
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"cannot create the {kind} store at {path}: {e}") from None
        elif not (path / "data.mdb").exists():
            raise StorageError(f"no {kind} store at {path}")
        durable = kind != "cache"  # the cache holds derived data only: it may lose recent writes
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=8,
                max_readers=256,
                subdir=True,
                sync=durable,
                metasync=durable,
                readahead=False,
                readonly=readonly,
            )
            self.db = {
                t.name: self.env.open_db(t.name.encode(), create=not readonly)
                for t in TABLES
                if t.env == kind
            }
        except lmdb.Error as e:
            raise StorageError(f"cannot open the {kind} store at {path}: {e}") from None

    @contextmanager
    def write(self) -> Iterator[lmdb.Transaction]:
        """An atomic write transaction: commits unless an exception escapes."""
        if self.readonly:
            raise ReadOnlyLedger(f"writing the {self.kind} store")
        try:
            with self.env.begin(write=True) as txn:
                yield txn
        except lmdb.MapFullError:
            raise StorageError(
                f"the {self.kind} store at {self.path} is full: reopen with a larger map_size"
            ) from None

    def read(self) -> lmdb.Transaction:
        return self.env.begin(write=False, buffers=False)

    def close(self) -> None:
        self.env.close()


class Store:
    """All environments of one ledger directory, opened by a single owner."""

    def __init__(
        self,
        path: Path,
        shard_dirs: Sequence[Path],
        map_size: int,
        create: bool,
        readonly: bool = False,
    ) -> None:
        key = str(path.resolve())
        with _OPEN_LOCK:
            if key in _OPEN:
                raise StorageError(f"{path} is already open in this process")
            _OPEN.add(key)
        self._key = key
        self.path = path
        self.envs: list[Env] = []
        self._lock_fd: int | None = None
        self.readonly = readonly
        try:
            if not readonly:  # readers share the environments with the owner (LMDB's MVCC)
                self._lock_fd = _lock(path, create)
            self.meta = self._env(path / "meta", "meta", map_size, create)
            self.shards = [self._env(Path(d), "shard", map_size, create) for d in shard_dirs]
            self.cache = self._open_cache(path / "cache", map_size)
            self.blobs = self._env(path / "blobs", "blobs", map_size, not readonly)
        except BaseException:
            self.close()
            raise
        self._zc = threading.local()

    def _open_cache(self, path: Path, map_size: int) -> Env:
        """The cache environment; if a system crash left it unreadable, it is rebuilt empty
        (it holds only checkpoints and verdicts, which materialisation recomputes)."""
        if self.readonly:
            return self._env(path, "cache", map_size, False)
        try:
            return self._env(path, "cache", map_size, True)
        except StorageError:
            shutil.rmtree(path, ignore_errors=True)
            return self._env(path, "cache", map_size, True)

    def cache_get(self, table: str, key: bytes) -> bytes | None:
        """A cache entry, or None if absent, damaged or unreadable."""
        try:
            with self.cache.read() as txn:
                return unseal(key, txn.get(key, db=self.cache.db[table]))
        except lmdb.Error:
            return None

    def cache_put(self, table: str, key: bytes, value: bytes) -> None:
        """Store a cache entry; a full or failing cache is not an error (entries are derived)."""
        self.cache_put_many(table, [(key, value)])

    def cache_put_many(self, table: str, entries: Sequence[tuple[bytes, bytes]]) -> None:
        """Store cache entries in one write transaction (same rules as :meth:`cache_put`); a
        read-only handle stores nothing."""
        if self.readonly:
            return
        try:
            with self.cache.write() as txn:
                txn.cursor(self.cache.db[table]).putmulti(
                    sorted((k, seal(k, v)) for k, v in entries)
                )
        except (lmdb.Error, StorageError):
            pass

    def _env(self, path: Path, kind: str, map_size: int, create: bool) -> Env:
        env = Env(path, kind, map_size, create and not self.readonly, self.readonly)
        self.envs.append(env)
        return env

    @classmethod
    def create(
        cls,
        path: Path,
        genesis_bytes: bytes,
        n_shards: int,
        shard_dirs: Sequence[str | os.PathLike[str]] | None,
        map_size: int,
    ) -> Store:
        path = Path(path)
        if (path / "meta" / "data.mdb").exists():
            raise StorageError(f"a ledger already exists at {path}")
        if shard_dirs is not None and len(shard_dirs) != n_shards:
            raise StorageError(f"{len(shard_dirs)} shard directories for {n_shards} shards")
        dirs = [Path(d).resolve() for d in shard_dirs] if shard_dirs else None
        store = cls(path, dirs or _default_dirs(path, n_shards), map_size, True)
        with store.meta.write() as txn:
            info = store.meta.db["info"]
            txn.put(b"schema", u64(SCHEMA_VERSION), db=info)
            txn.put(b"genesis", zstandard.compress(genesis_bytes), db=info)
            txn.put(b"head", u64(0), db=info)
            txn.put(
                b"shard_dirs",
                json.dumps([str(d) for d in dirs] if dirs else None).encode(),
                db=info,
            )
        return store

    @classmethod
    def open(cls, path: Path, map_size: int, readonly: bool = False) -> tuple[Store, bytes]:
        """Open an existing store; returns it and the genesis bytes. The owner rolls back torn
        writes; a ``readonly`` handle takes no lock, writes nothing and reads up to the
        committed head only."""
        path = Path(path)
        if not (path / "meta" / "data.mdb").exists():
            raise StorageError(f"no ledger at {path}")
        probe = Env(path / "meta", "meta", map_size, False, readonly)
        try:
            with probe.read() as txn:
                info = probe.db["info"]
                schema = get(txn, b"schema", info)
                found = read_u64(schema) if schema else 0
                if found != SCHEMA_VERSION:
                    raise SchemaMismatch(found, SCHEMA_VERSION)
                genesis = zstandard.decompress(need(txn, b"genesis", info, "the genesis"))
                dirs = json.loads(need(txn, b"shard_dirs", info, "the shard directories"))
        finally:
            probe.close()
        from lazyledger.model import Genesis

        n = Genesis.from_bytes(genesis).n_shards
        dirs = [Path(d) for d in dirs] if dirs else _default_dirs(path, n)
        store = cls(path, dirs, map_size, False, readonly)
        if not readonly:
            store.recover()
        return store, genesis

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        with _OPEN_LOCK:
            _OPEN.discard(self._key)

    # -- compression --------------------------------------------------------------------------

    def compress(self, data: bytes) -> bytes:
        c = getattr(self._zc, "c", None)
        if c is None:
            c = self._zc.c = zstandard.ZstdCompressor(level=3)
        return bytes(c.compress(data))

    def decompress(self, data: Buf) -> bytes:
        d = getattr(self._zc, "d", None)
        if d is None:
            d = self._zc.d = zstandard.ZstdDecompressor()
        return bytes(d.decompress(data))

    def decompress_many(self, values: Sequence[Buf]) -> list[bytes]:
        """:meth:`decompress` of each of ``values``."""
        d = getattr(self._zc, "d", None)
        if d is None:
            d = self._zc.d = zstandard.ZstdDecompressor()
        unzip = d.decompress
        return [bytes(unzip(v)) for v in values]

    # -- head and recovery --------------------------------------------------------------------

    def head(self) -> int:
        with self.meta.read() as txn:
            return read_u64(need(txn, b"head", self.meta.db["info"], "the head height"))

    def recover(self) -> None:
        """Roll back shard writes of any block above the committed head (a torn or refused
        append), restoring each shard's own head to its last section at or below it."""
        head = self.head()
        for shard, env in enumerate(self.shards):
            with env.write() as txn:
                raw = txn.get(b"head", db=env.db["info"])
                written = read_u64(raw) if raw else 0
                if written <= head:
                    continue
                for height in range(written, head, -1):
                    self._drop_section(txn, env, shard, height)
                cur = txn.cursor(env.db["bodies"])
                if cur.last():
                    txn.put(b"head", bytes(cur.key()), db=env.db["info"])
                else:
                    txn.delete(b"head", db=env.db["info"])

    def _drop_section(self, txn: Any, env: Env, shard: int, height: int) -> None:
        txn.delete(u64(height), db=env.db["bodies"])
        txn.delete(u64(height), db=env.db["rows"])
        cur = txn.cursor(env.db["hosted"])
        if cur.set_range(u64(height << 32)):
            while cur.key() < u64((height + 1) << 32) and cur.delete():
                pass

    def map_use(self) -> dict[str, tuple[int, int]]:
        """Bytes used and map size of every environment, by directory."""
        return {str(e.path): (e.used_bytes, e.map_size) for e in self.stats().envs}

    def stats(self) -> StorageStats:
        """Map size, map use, free pages and per-table pages of every environment."""
        return StorageStats(tuple(_env_stats(env) for env in self.envs))


@attrs.frozen
class TableStats:
    """One table's B-tree: entries and pages (``txn.stat``)."""

    name: str
    entries: int
    depth: int
    branch_pages: int
    leaf_pages: int
    overflow_pages: int
    page_size: int

    @property
    def pages(self) -> int:
        return self.branch_pages + self.leaf_pages + self.overflow_pages

    @property
    def bytes(self) -> int:
        return self.pages * self.page_size


@attrs.frozen
class EnvStats:
    """One LMDB environment: its map, the pages in use and what holds them. ``free_pages``
    are pages below the high-water mark that no table holds: LMDB's freelist (and the pages
    of the freelist itself), reused by later writes before the file grows."""

    kind: str
    path: str
    map_size: int
    page_size: int
    last_page: int
    """Pages in use: the high-water mark (``last_pgno + 1``), meta pages included."""
    free_pages: int
    tables: tuple[TableStats, ...]

    @property
    def used_bytes(self) -> int:
        return self.last_page * self.page_size

    @property
    def free_bytes(self) -> int:
        return self.free_pages * self.page_size

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "map_size": self.map_size,
            "used_bytes": self.used_bytes,
            "page_size": self.page_size,
            "free_pages": self.free_pages,
            "tables": {
                t.name: {"entries": t.entries, "pages": t.pages, "bytes": t.bytes}
                for t in self.tables
            },
        }


@attrs.frozen
class StorageStats:
    """Every environment of a ledger (:meth:`Store.stats`)."""

    envs: tuple[EnvStats, ...]

    @property
    def used_bytes(self) -> int:
        return sum(e.used_bytes for e in self.envs)

    @property
    def free_bytes(self) -> int:
        return sum(e.free_bytes for e in self.envs)

    def table_bytes(self) -> dict[str, int]:
        """Page bytes per table name, summed over environments (e.g. every shard's bodies)."""
        out: dict[str, int] = {}
        for e in self.envs:
            for t in e.tables:
                out[t.name] = out.get(t.name, 0) + t.bytes
        return out

    def to_json(self) -> dict[str, Any]:
        """By environment directory: map size, bytes used, free pages, tables."""
        return {e.path: e.to_json() for e in self.envs}


_META_PAGES = 2


def _env_stats(env: Env) -> EnvStats:
    info, main = env.env.info(), env.env.stat()
    psize = int(main["psize"])
    with env.read() as txn:
        tables = tuple(
            TableStats(
                name,
                int(st["entries"]),
                int(st["depth"]),
                int(st["branch_pages"]),
                int(st["leaf_pages"]),
                int(st["overflow_pages"]),
                psize,
            )
            for name, db in env.db.items()
            for st in [txn.stat(db)]
        )
    last = int(info["last_pgno"]) + 1
    held = _META_PAGES + sum(int(main[k]) for k in ("branch_pages", "leaf_pages", "overflow_pages"))
    held += sum(t.pages for t in tables)
    return EnvStats(
        env.kind, str(env.path), int(info["map_size"]), psize, last, max(0, last - held), tables
    )


def _lock(path: Path, create: bool) -> int:
    """Take the ledger directory's owner lock (``LOCK``, an exclusive flock): one process
    writes a ledger at a time, or a second writer's stale head would fork the chain."""
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StorageError(f"cannot create the ledger directory {path}: {e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(f"{path} is open in another process (its LOCK is held)") from None
    return fd


def _default_dirs(path: Path, n: int) -> list[Path]:
    return [path / f"shard-{s:04d}" for s in range(n)]
