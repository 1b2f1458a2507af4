"""In-memory lookup of 32-byte digests (transaction ids, accounts) by their first 8 bytes.

The store keeps no B-tree keyed by digest: such keys arrive in random order, so every commit
rewrites pages all over the tree and the tree's pages stay part empty. Instead the digests'
8-byte prefixes travel with each stored section and are indexed here, in memory, when the
ledger builds its index. A prefix is only a candidate: the caller checks the full digest
against the stored data (two digests may share a prefix)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numba import njit

MERGE_MIN = 4096
"""Entries kept in the unsorted tail before it is merged into the sorted arrays."""


def prefixes(digests: bytes) -> np.ndarray:
    """The big-endian u64 prefixes of concatenated 32-byte digests."""
    if len(digests) % 32:
        raise ValueError("digests must be a multiple of 32 bytes")
    out: np.ndarray = np.frombuffer(digests, ">u8").reshape(-1, 4)[:, 0].astype(np.uint64)
    return out


def prefix(digest: bytes) -> int:
    """The big-endian u64 prefix of one digest."""
    return int.from_bytes(digest[:8], "big")


class PrefixIndex:
    """Values (non-negative integers, added in ascending order) by u64 prefix; several values
    may share a prefix. Append-only: sorted arrays, plus a tail of recent entries merged once
    it grows."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, np.uint64)
        self._values = np.zeros(0, np.int64)
        self._tail: dict[int, list[int]] = {}
        self._tail_n = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys) + self._tail_n

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Index ``values[i]`` under ``keys[i]`` (values above every value added before)."""
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        with self._lock:
            if len(keys) >= MERGE_MIN or self._tail_n + len(keys) > max(
                MERGE_MIN, len(self._keys) >> 3
            ):
                self._merge(np.asarray(keys, np.uint64), np.asarray(values, np.int64))
                return
            for k, v in zip(keys.tolist(), values.tolist(), strict=True):
                self._tail.setdefault(k, []).append(v)
            self._tail_n += len(keys)

    def _merge(self, keys: np.ndarray, values: np.ndarray) -> None:
        tk = [k for k, vs in self._tail.items() for _ in vs]
        tv = [v for vs in self._tail.values() for v in vs]
        all_keys = np.concatenate([self._keys, np.array(tk, np.uint64), keys])
        all_values = np.concatenate([self._values, np.array(tv, np.int64), values])
        order = np.argsort(all_keys, kind="stable")  # values stay ascending within a prefix
        self._keys, self._values = all_keys[order], all_values[order]
        self._tail, self._tail_n = {}, 0

    def get(self, key: int) -> list[int]:
        """Every value indexed under ``key``, ascending."""
        return self.get_many(np.array([key], np.uint64))[0]

    def get_many(self, keys: np.ndarray) -> list[list[int]]:
        """:meth:`get` of each of ``keys`` (u64), with two vectorised searches in all."""
        with self._lock:
            sorted_keys, values, tail = self._keys, self._values, self._tail
            lo_a, hi_a = _ranges(sorted_keys, keys)
            lo, hi = lo_a.tolist(), hi_a.tolist()
            out = []
            for k, a, b in zip(keys.tolist(), lo, hi, strict=True):
                found = values[a:b].tolist() if a < b else []
                more = tail.get(k)
                out.append(found if more is None else sorted(found + more))
        return out


@njit(cache=True)
def _ranges(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range of each of ``wanted`` in the sorted ``keys``, holding the GIL (a short call:
    a lookup on the ingesting thread should not hand the GIL to another thread mid-block)."""
    lo = np.searchsorted(keys, wanted, side="left")
    hi = np.searchsorted(keys, wanted, side="right")
    return lo, hi


RECENT = 1 << 20
"""Accounts whose ids :class:`DenseIds` keeps in a dict (cleared when full)."""


class DenseIds:
    """Dense ids 0, 1, ... of 32-byte accounts in order of first appearance: id -> account as
    one array, account -> id through a :class:`PrefixIndex` checked against that array (and a
    dict of recently used or added accounts in front of it)."""

    def __init__(self) -> None:
        self._names = np.zeros(1024, "V32")
        self._n = 0
        self._index = PrefixIndex()
        self._lock = threading.Lock()
        self._recent: dict[bytes, int] = {}

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> np.ndarray:
        """Accounts by dense id (a V32 array; later additions never change it)."""
        return self._names[: self._n]

    def add(self, first: int, names: bytes) -> None:
        """Give the accounts in ``names`` (32 bytes each) ids ``first``, ``first + 1``, ...;
        ``first`` must be the next id."""
        k = len(names) // 32
        if first != self._n or len(names) % 32:
            raise ValueError(f"ids from {first} given, next is {self._n}")
        if not k:
            return
        with self._lock:
            stop = self._n + k
            grown = self._names
            if stop > len(grown):
                grown = np.zeros(max(stop, 2 * len(grown)), "V32")
                grown[: self._n] = self._names[: self._n]
            grown[self._n : stop] = np.frombuffer(names, "V32")
            self._names, self._n = grown, stop
        self._index.add(prefixes(names), np.arange(first, stop, dtype=np.int64))
        if k <= MERGE_MIN:  # an append's new accounts are likely to be used again soon
            for i in range(k):
                self._remember(names[32 * i : 32 * i + 32], first + i)

    def _remember(self, account: bytes, k: int) -> None:
        if len(self._recent) >= RECENT:
            self._recent = {}
        self._recent[account] = k

    def ids_of(self, accounts: Sequence[bytes]) -> list[int | None]:
        """:meth:`id_of` of each of ``accounts`` (32 bytes each), those not recently used
        looked up together (one vectorised search rather than one per account)."""
        out = [self._recent.get(a) for a in accounts]
        missing = [i for i, found in enumerate(out) if found is None]
        if not missing:
            return out
        names = self._names
        wanted = b"".join(accounts[i] for i in missing)
        for i, candidates in zip(missing, self._index.get_many(prefixes(wanted)), strict=True):
            for k in candidates:
                if names[k].tobytes() == accounts[i]:
                    self._remember(accounts[i], k)
                    out[i] = k
                    break
        return out

    def id_of(self, account: bytes) -> int | None:
        """The dense id of ``account`` (None: it has none)."""
        found = self._recent.get(account)
        if found is not None:
            return found
        names = self._names
        for k in self._index.get(prefix(account)):
            if names[k].tobytes() == account:
                self._remember(account, k)
                return k
        return None
