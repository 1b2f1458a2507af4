"""LMDB storage: one environment for chain metadata, one per shard, one for derived caches.

Every table is declared once in ``TABLES`` (:mod:`lazyledger.tables`) with its key and value
codecs, and read and written through them (:meth:`Env.get`, :meth:`Env.put` and friends).
A block is written shard environments first (:mod:`lazyledger.shards.store`, the writer beside
its rollback), then the metadata environment, whose commit is the commit point: on open, shard
writes above the committed head (a crash between the two) are rolled back, so no torn block is
ever visible."""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import blake3
import lmdb
import zstandard

from lazyledger.errors import ReadOnlyLedger, SchemaMismatch, StorageError
from lazyledger.model import Genesis
from lazyledger.shards.store import default_dirs, rollback
from lazyledger.tables import (
    GENESIS,
    HEAD,
    META_INFO,
    SCHEMA,
    SHARD_DIRS,
    Field,
    max_dbs,
    tables_of,
)
from lazyledger.tables import TABLES as TABLES  # (re-exported: declared here before)
from lazyledger.tables import Table as Table

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

SCHEMA_VERSION = 6
DEFAULT_MAP_SIZE = 64 << 30

_U64 = struct.Struct(">Q")


_OPEN: set[str] = set()
_OPEN_LOCK = threading.Lock()


def u64(n: int) -> bytes:
    return _U64.pack(n)


Buf = bytes | memoryview
"""What LMDB hands back (always ``bytes`` here: transactions are opened with buffers=False)."""


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


class Zip(Protocol):
    """Compression of the values of ``zstd`` tables (the :class:`Store` owns the contexts)."""

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: Buf) -> bytes: ...


class Zstd:
    """zstd level 3, with one compressor and one decompressor per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def compressor(self) -> zstandard.ZstdCompressor:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=3)
        return c

    def decompressor(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    def compress(self, data: bytes) -> bytes:
        return bytes(self.compressor().compress(data))

    def decompress(self, data: Buf) -> bytes:
        return bytes(self.decompressor().decompress(data))


class Env:
    """One LMDB environment with its declared tables, read and written through their codecs."""

    def __init__(
        self,
        path: Path,
        kind: str,
        map_size: int,
        create: bool,
        readonly: bool = False,
        zip: Zip | None = None,
    ) -> None:
        self.path, self.kind, self.readonly = path, kind, readonly
        self.zip: Zip = zip if zip is not None else Zstd()
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
                max_dbs=max_dbs(kind),
                max_readers=256,
                subdir=True,
                sync=durable,
                metasync=durable,
                readahead=False,
                readonly=readonly,
            )
            self.db = {
                t.name: self.env.open_db(t.name.encode(), create=not readonly)
                for t in tables_of(kind)
            }
        except lmdb.Error as e:
            raise StorageError(f"cannot open the {kind} store at {path}: {e}") from None

    def _db(self, table: Table[Any, Any]) -> Any:
        if table.env != self.kind:
            raise StorageError(f"table {table.name} lives in {table.env}, not in {self.kind}")
        return self.db[table.name]

    def _value(self, table: Table[K, V], value: V) -> bytes:
        raw = table.value.encode(value)
        return self.zip.compress(raw) if table.zstd else raw

    def _read(self, table: Table[K, V], stored: Buf) -> V:
        return table.value.decode(self.zip.decompress(stored) if table.zstd else bytes(stored))

    def get(self, txn: lmdb.Transaction, table: Table[K, V], key: K) -> V | None:
        """The value under ``key`` (None: absent)."""
        stored = txn.get(table.key.encode(key), db=self._db(table))
        return None if stored is None else self._read(table, stored)

    def need(self, txn: lmdb.Transaction, table: Table[K, V], key: K, what: str) -> V:
        """A value that must exist; its absence means the store is damaged."""
        raw_key = table.key.encode(key)
        stored = txn.get(raw_key, db=self._db(table))
        if stored is None:
            raise StorageError(f"the store is missing {what} (key {raw_key.hex()})")
        return self._read(table, stored)

    def has(self, txn: lmdb.Transaction, table: Table[K, Any], key: K) -> bool:
        return txn.get(table.key.encode(key), db=self._db(table)) is not None

    def put(
        self,
        txn: lmdb.Transaction,
        table: Table[K, V],
        key: K,
        value: V,
        overwrite: bool = True,
    ) -> None:
        txn.put(
            table.key.encode(key),
            self._value(table, value),
            db=self._db(table),
            overwrite=overwrite,
        )

    def put_many(
        self,
        txn: lmdb.Transaction,
        table: Table[K, V],
        items: Sequence[tuple[K, V]],
        append: bool = False,
    ) -> None:
        """Store ``items``; with ``append``, they follow every stored key in key order (LMDB
        fills whole pages)."""
        encoded = [(table.key.encode(k), self._value(table, v)) for k, v in items]
        txn.cursor(self._db(table)).putmulti(encoded, append=append)

    def delete(self, txn: lmdb.Transaction, table: Table[K, Any], key: K) -> bool:
        return bool(txn.delete(table.key.encode(key), db=self._db(table)))

    def get_field(
        self, txn: lmdb.Transaction, table: Table[str, bytes], field: Field[T]
    ) -> T | None:
        """An entry of an ``info`` table, read with its own codec."""
        raw = self.get(txn, table, field.name)
        return None if raw is None else field.codec.decode(raw)

    def need_field(self, txn: lmdb.Transaction, table: Table[str, bytes], field: Field[T]) -> T:
        return field.codec.decode(self.need(txn, table, field.name, f"the {field.name}"))

    def put_field(
        self, txn: lmdb.Transaction, table: Table[str, bytes], field: Field[T], value: T
    ) -> None:
        self.put(txn, table, field.name, field.codec.encode(value))

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
        self._zstd = Zstd()
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

    def cache_get(self, table: Table[K, V], key: K) -> V | None:
        """A cache entry, or None if absent, damaged (its seal or its codec) or unreadable."""
        raw_key = table.key.encode(key)
        try:
            with self.cache.read() as txn:
                value = unseal(raw_key, txn.get(raw_key, db=self.cache._db(table)))
        except lmdb.Error:
            return None
        return None if value is None else _decoded(table, value)

    def cache_put(self, table: Table[K, V], key: K, value: V) -> None:
        """Store a cache entry; a full or failing cache is not an error (entries are derived)."""
        self.cache_put_many(table, [(key, value)])

    def cache_put_many(self, table: Table[K, V], entries: Sequence[tuple[K, V]]) -> None:
        """Store cache entries in one write transaction (same rules as :meth:`cache_put`); a
        read-only handle stores nothing."""
        if self.readonly:
            return
        encoded = [(table.key.encode(k), table.value.encode(v)) for k, v in entries]
        try:
            with self.cache.write() as txn:
                txn.cursor(self.cache._db(table)).putmulti(
                    sorted((k, seal(k, v)) for k, v in encoded)
                )
        except (lmdb.Error, StorageError):
            pass

    def cache_entries(self, table: Table[K, V]) -> list[tuple[K, V]]:
        """Every entry of a cache table in key order, leaving out damaged ones."""
        with self.cache.read() as txn:
            stored = [(bytes(k), bytes(v)) for k, v in txn.cursor(self.cache._db(table))]
        out: list[tuple[K, V]] = []
        for raw_key, value in stored:
            opened = unseal(raw_key, value)
            key = _decoded(table, raw_key, key=True) if opened is not None else None
            found = _decoded(table, opened) if opened is not None else None
            if key is not None and found is not None:
                out.append((key, found))
        return out

    def _env(self, path: Path, kind: str, map_size: int, create: bool) -> Env:
        env = Env(path, kind, map_size, create and not self.readonly, self.readonly, self)
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
        store = cls(path, dirs or default_dirs(path, n_shards), map_size, True)
        meta = store.meta
        with meta.write() as txn:
            meta.put_field(txn, META_INFO, SCHEMA, SCHEMA_VERSION)
            meta.put_field(txn, META_INFO, GENESIS, genesis_bytes)
            meta.put_field(txn, META_INFO, HEAD, 0)
            meta.put_field(txn, META_INFO, SHARD_DIRS, [str(d) for d in dirs] if dirs else None)
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
                schema = probe.get(txn, META_INFO, SCHEMA.name)
                found = read_u64(schema) if schema and len(schema) == 8 else 0
                if found != SCHEMA_VERSION:
                    raise SchemaMismatch(found, SCHEMA_VERSION)
                genesis = probe.need_field(txn, META_INFO, GENESIS)
                dirs = probe.need_field(txn, META_INFO, SHARD_DIRS)
        finally:
            probe.close()
        n = Genesis.from_bytes(genesis).n_shards
        paths = [Path(d) for d in dirs] if dirs else default_dirs(path, n)
        store = cls(path, paths, map_size, False, readonly)
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
        """What every ``zstd`` table's value goes through on its way to disk."""
        return self._zstd.compress(data)

    def decompress(self, data: Buf) -> bytes:
        return self._zstd.decompress(data)

    def decompress_many(self, values: Sequence[Buf]) -> list[bytes]:
        """:meth:`decompress` of each of ``values``."""
        unzip = self._zstd.decompressor().decompress
        return [bytes(unzip(v)) for v in values]

    # -- head and recovery --------------------------------------------------------------------

    def head(self) -> int:
        with self.meta.read() as txn:
            return self.meta.need_field(txn, META_INFO, HEAD)

    def recover(self) -> None:
        """Roll back shard writes of any block above the committed head (a torn or refused
        append), restoring each shard's own head to its last section at or below it."""
        head = self.head()
        for env in self.shards:
            rollback(env, head)

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


def _decoded(table: Table[Any, Any], raw: bytes, key: bool = False) -> Any:
    """A cache key or value read with its codec; None when malformed (derived data)."""
    try:
        return (table.key if key else table.value).decode(raw)
    except StorageError:
        return None
