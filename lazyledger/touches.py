"""Touch commitments: what a header's ``touch_root`` commits to, how it is maintained as blocks
are appended, and how a prefix of one account's touch list is proven and checked.

The *touch list* of an account is the ordered list of packed positions of the transactions
whose access set contains it (``Transaction.access()``: private transactions through their
public access set). Hashes are blake3; ``u64`` is big-endian:

- touch tree of an account: a binary Merkle tree over its touch list, RFC 6962 shaped like a
  section's tree (``shards/merkle.py``): leaf = ``H(0x00 || position:u64)``, node =
  ``H(0x01 || left || right)``, split at the largest power of two below the leaf count. It is
  kept as the peaks of a Merkle mountain range (one per set bit of the count, largest first);
  bagging them right to left gives exactly the RFC 6962 root, so an append costs one leaf hash,
  amortised one node hash and ``popcount(count) - 1`` hashes for the root.
- entry of a touched account: ``account:32 | count:u64 | touch tree root:32`` (72 bytes).
- bucket ``b`` (``b`` = the first 20 bits of the account, 2**20 buckets): ``H(0x03 || entries)``,
  its entries sorted by account; an untouched bucket is ``H(0x03)``.
- ``touch_root``: the root of the perfect binary tree of depth 20 over the buckets in bucket
  order, node = ``H(0x01 || left || right)``.

A *prefix proof* that the first ``k`` touches of an account are the ``k`` positions a verifier
holds (``0 < k <= count``): the account's ``count``, the roots of the maximal subtrees of its
touch tree that lie entirely at or after leaf ``k`` in left-to-right order (at most
``log2(count)`` of them; none when ``k == count``), the other entries of its bucket, and the 20
sibling hashes from its bucket to ``touch_root`` (bucket level first). The verifier recomputes
every subtree left of ``k`` from the positions it holds, so the proof costs ``O(k + log count)``
to check. ``count == 0`` (with ``k == 0``) proves an account was never touched: its bucket's
entries do not name it.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from blake3 import blake3

from lazyledger.errors import InvalidRequest
from lazyledger.shards import hashtree, pack_position

if TYPE_CHECKING:
    from lazyledger.model import Transaction

DEPTH = 20
"""Levels of the bucket tree: 2**20 buckets (about one account per bucket at 10**6 accounts)."""
ENTRY_SIZE = 72
MAX_COUNT = 1 << 52
"""Counts above this are refused by the verifier (far above any chain: 2**52 positions)."""

EMPTY_TREE = blake3(b"").digest()
"""The root of an empty touch tree (never in an entry: untouched accounts have none)."""


def leaf(position: int) -> bytes:
    return blake3(b"\x00" + position.to_bytes(8, "big")).digest()


def node(left: bytes, right: bytes) -> bytes:
    return blake3(b"\x01" + left + right).digest()


def bucket_hash(entries: Iterable[bytes]) -> bytes:
    return blake3(b"\x03" + b"".join(entries)).digest()


def bucket_of(account: bytes) -> int:
    return int.from_bytes(account[:3], "big") >> (24 - DEPTH)


def entry(account: bytes, count: int, root: bytes) -> bytes:
    return account + count.to_bytes(8, "big") + root


DEFAULTS: list[bytes] = [bucket_hash(())]
for _ in range(DEPTH):
    DEFAULTS.append(node(DEFAULTS[-1], DEFAULTS[-1]))
EMPTY_ROOT = DEFAULTS[DEPTH]
_DEFAULTS = np.frombuffer(b"".join(DEFAULTS), np.uint8).reshape(DEPTH + 1, 32)
_ZERO = bytes(32)
"""``touch_root`` when no account was ever touched (genesis)."""
_CHUNK = 4096
"""Buckets written to the bucket tree per kernel call when a map is built whole."""


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 root over leaf hashes (``EMPTY_TREE`` for none)."""
    if not hashes:
        return EMPTY_TREE
    level = list(hashes)
    return _range_root(level, 0, len(level))


def _range_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return hashes[lo]
    n = hi - lo
    if n & (n - 1) == 0:  # perfect: pair up level by level
        level = list(hashes[lo:hi])
        while len(level) > 1:
            level = [node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    m = lo + _split(n)
    return node(_range_root(hashes, lo, m), _range_root(hashes, m, hi))


def right_hashes(leaves: Sequence[bytes], k: int) -> list[bytes]:
    """The prefix proof's subtree roots for the first ``k`` of ``leaves`` (left to right)."""
    out: list[bytes] = []

    def walk(lo: int, hi: int) -> None:
        if hi <= k:
            return
        if lo >= k:
            out.append(_range_root(leaves, lo, hi))
            return
        m = lo + _split(hi - lo)
        walk(lo, m)
        walk(m, hi)

    if len(leaves) > k:
        walk(0, len(leaves))
    return out


def prefix_root(leaves: Sequence[bytes], count: int, right: Sequence[bytes]) -> bytes | None:
    """The touch tree root of ``count`` leaves whose first ``len(leaves)`` are ``leaves`` and
    whose remaining subtrees are ``right``; None if ``right`` does not fit that shape."""
    k = len(leaves)
    if not 0 < k <= count <= MAX_COUNT:
        return None
    used = 0

    def walk(lo: int, hi: int) -> bytes | None:
        nonlocal used
        if hi <= k:
            return _range_root(leaves, lo, hi)
        if lo >= k:
            if used >= len(right):
                return None
            used += 1
            return right[used - 1]
        m = lo + _split(hi - lo)
        a = walk(lo, m)
        b = walk(m, hi)
        return None if a is None or b is None else node(a, b)

    r = walk(0, count)
    return r if r is not None and used == len(right) else None


def climb(bucket: int, h: bytes, path: Sequence[bytes]) -> bytes:
    """The root reached from bucket hash ``h`` through its ``DEPTH`` siblings."""
    for d, sibling in enumerate(path):
        h = node(sibling, h) if (bucket >> d) & 1 else node(h, sibling)
    return h


def check_account(
    touch_root: bytes,
    account: bytes,
    positions: Sequence[int],
    count: int,
    right: Sequence[bytes],
    others: Sequence[tuple[bytes, int, bytes]],
    path: Sequence[bytes],
) -> str | None:
    """Check a prefix proof: that ``positions`` are the first touches of ``account`` among
    ``count`` committed under ``touch_root``. Returns None, or what is wrong."""
    if len(path) != DEPTH or any(len(p) != 32 for p in path) or any(len(r) != 32 for r in right):
        return "the proof's hashes are not 32 bytes each, or its path is not 20 long"
    b = bucket_of(account)
    entries: list[bytes] = []
    for other, n, r in others:
        if len(other) != 32 or len(r) != 32 or not 0 < n <= MAX_COUNT or bucket_of(other) != b:
            return "the proof's bucket holds a malformed entry or another bucket's account"
        if other == account:
            return "the proof's bucket repeats the account"
        entries.append(entry(other, n, r))
    if count == 0:
        if positions or right:
            return "a count of 0 with touches"
    else:
        root = prefix_root([leaf(p) for p in positions], count, right)
        if root is None:
            return (
                f"{len(positions)} touches and {len(right)} subtree hashes "
                f"do not fit a touch list of {count}"
            )
        entries.append(entry(account, count, root))
    ordered = sorted(entries)
    if any(a[:32] == c[:32] for a, c in itertools.pairwise(ordered)):
        return "the proof's bucket repeats an account"
    if climb(b, bucket_hash(ordered), path) != touch_root:
        return "the touch proof does not reach the header's touch_root"
    return None


def encode_proof(proof: dict[str, Any]) -> str:
    """A prefix proof as :meth:`TouchMap.prove` gives it, in its compact transport form: base64
    of ``count:u64 | r:u8 | r x hash:32 | b:u16 | b x (account:32 count:u64 root:32) | DEPTH x
    hash:32`` (right hashes, the bucket's other entries, the path from the bucket up). Its
    size is ``8 + 1 + 32r + 2 + 72b + 32 * DEPTH`` bytes before base64."""
    parts = [int(proof["count"]).to_bytes(8, "big"), bytes([len(proof["right"])])]
    parts += [bytes.fromhex(h) for h in proof["right"]]
    parts.append(len(proof["bucket"]).to_bytes(2, "big"))
    for other, count, root in proof["bucket"]:
        parts += [bytes.fromhex(other), int(count).to_bytes(8, "big"), bytes.fromhex(root)]
    parts += [bytes.fromhex(h) for h in proof["path"]]
    return base64.b64encode(b"".join(parts)).decode()


def decode_proof(text: str) -> tuple[int, list[bytes], list[tuple[bytes, int, bytes]], list[bytes]]:
    """(count, right hashes, the bucket's other entries, path) of an :func:`encode_proof`
    string; ValueError names what is malformed (bad base64, a length that does not add up)."""
    if not isinstance(text, str):
        raise ValueError("a touch proof must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("a touch proof is not base64") from None
    if len(data) < 9:
        raise ValueError("a touch proof is truncated")
    count, r = int.from_bytes(data[:8], "big"), data[8]
    at = 9 + 32 * r
    if len(data) < at + 2:
        raise ValueError("a touch proof is truncated")
    right = [data[9 + 32 * i : 41 + 32 * i] for i in range(r)]
    b = int.from_bytes(data[at : at + 2], "big")
    at += 2
    if len(data) != at + 72 * b + 32 * DEPTH:
        raise ValueError(
            f"a touch proof of {len(data)} bytes does not hold {r} right hashes,"
            f" {b} bucket entries and a {DEPTH}-hash path"
        )
    others = []
    for _ in range(b):
        count_at = int.from_bytes(data[at + 32 : at + 40], "big")
        others.append((data[at : at + 32], count_at, data[at + 40 : at + 72]))
        at += 72
    path = [data[at + 32 * d : at + 32 * d + 32] for d in range(DEPTH)]
    return count, right, others, path


class _Frozen:
    """The accounts' side of a map built whole (:meth:`TouchMap.from_columns`), kept in arrays
    sorted by account: Python objects are made only for the accounts a query or an append
    reads."""

    def __init__(
        self,
        accounts: np.ndarray,
        starts: np.ndarray,
        counts: np.ndarray,
        positions: np.ndarray,
        peaks: np.ndarray,
        peaks_lo: np.ndarray,
        peaks_hi: np.ndarray,
        roots: np.ndarray,
    ) -> None:
        self.accounts, self.starts, self.counts = accounts, starts, counts
        self.raw = positions.tobytes()  # touch lists, account after account
        self.peaks, self.peaks_lo, self.peaks_hi, self.roots = peaks, peaks_lo, peaks_hi, roots
        head = accounts.view(np.uint8).reshape(-1, 32)[:, :3].astype(np.int64)
        self.buckets: np.ndarray = (head[:, 0] << 16 | head[:, 1] << 8 | head[:, 2]) >> (24 - DEPTH)
        """The bucket of each account (ascending, as the accounts are)."""

    def find(self, account: bytes) -> int:
        """The row of ``account``, or -1."""
        if len(account) != 32 or not len(self.accounts):
            return -1
        j = int(np.searchsorted(self.accounts, np.frombuffer(account, "V32")[0]))
        return j if j < len(self.accounts) and self.accounts[j].tobytes() == account else -1

    def positions_of(self, j: int) -> array[int]:
        lo, n = int(self.starts[j]), int(self.counts[j])
        held = array("Q")  # (packed positions are below 2**63: same bytes as int64)
        held.frombytes(self.raw[8 * lo : 8 * (lo + n)])
        return held

    def peaks_of(self, j: int) -> list[bytes]:
        return [p.tobytes() for p in self.peaks[int(self.peaks_lo[j]) : int(self.peaks_hi[j])]]


def _bucket_hashes(frozen: _Frozen) -> np.ndarray:
    """``bucket_hash`` of every bucket a built-whole map touches, in bucket order: the messages
    (``0x03`` and the bucket's entries) laid out in one buffer and hashed by the Numba kernel;
    a bucket of more than 14 entries (over one 1,024-byte chunk) by the ``blake3`` package."""
    n = len(frozen.accounts)
    runs = np.flatnonzero(np.diff(frozen.buckets, prepend=-1))
    which = np.cumsum(np.diff(frozen.buckets, prepend=-1) != 0) - 1  # each account's bucket
    entries = np.empty((n, ENTRY_SIZE), np.uint8)
    entries[:, :32] = frozen.accounts.view(np.uint8).reshape(n, 32)
    entries[:, 32:40] = frozen.counts.astype(">u8").view(np.uint8).reshape(n, 8)
    entries[:, 40:] = frozen.roots
    data = np.empty(len(runs) + ENTRY_SIZE * n, np.uint8)
    starts = runs * ENTRY_SIZE + np.arange(len(runs))
    data[starts] = 3
    at = which + 1 + ENTRY_SIZE * np.arange(n)
    data[at[:, None] + np.arange(ENTRY_SIZE)] = entries
    ends = np.append(starts[1:], len(data))
    hashes = hashtree.chunk_hashes(data, starts, ends)
    for i in np.flatnonzero(ends - starts > 1024).tolist():  # crowded buckets: several chunks
        hashes[i] = np.frombuffer(blake3(data[starts[i] : ends[i]].tobytes()).digest(), np.uint8)
    return hashes


class _View(Mapping[Any, Any]):
    """A read-only mapping over a touch map's arrays (settling the map first)."""

    def __init__(
        self, touches: TouchMap, read: Callable[[Any], Any], keys: Callable[[], Iterator[Any]]
    ) -> None:
        self._touches, self._read, self._keys = touches, read, keys

    def __getitem__(self, key: Any) -> Any:
        self._touches._settle()
        found = self._read(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[Any]:
        self._touches._settle()
        return self._keys()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with room for ``n`` rows (doubled as needed; new rows zero)."""
    if n <= len(a):
        return a
    out = np.zeros((max(n, 2 * len(a)), *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


class TouchMap:
    """The touch commitment after block ``height``, kept in memory in arrays indexed by a
    dense account id (the rows of a map built whole first, then accounts in order of first
    touch): counts, touch tree roots and account names, mountain-range peaks in a pool, the
    positions appended since the map was built whole as a log linked per account, each
    bucket's accounts as a list linked in account order, and the bucket tree
    (``hashtree.BucketTree``: only the rows written, dense once they are many). The per-block
    work is done by the Numba kernels of ``shards/hashtree.py``; ``positions``, ``peaks``,
    ``entries`` and ``buckets`` are read-only mappings over the arrays. Change it only through
    :meth:`stage`; a stage that is neither committed nor rolled back is rolled back by the
    next use of the map."""

    def __init__(self, frozen: _Frozen | None = None) -> None:
        self.height = 0
        self._frozen = frozen
        n = 0 if frozen is None else len(frozen.accounts)
        self._n = n
        """Ids in use."""
        self._ids: dict[bytes, int] = {}
        """Ids of accounts looked up or added since the map was built whole."""
        room = max(n, 64)
        self._count = np.zeros(room, np.int64)
        self._last = np.full(room, -1, np.int64)
        self._at = np.full(room, -1, np.int64)
        self._cap = np.zeros(room, np.int64)
        self._stamp = np.full(room, -1, np.int64)
        self._listed = np.zeros(room, np.uint8)
        self._next = np.full(room, -1, np.int64)
        self._root = np.zeros((room, 32), np.uint8)
        self._names = np.zeros((room, 32), np.uint8)
        self._head = np.zeros(1 << DEPTH, np.int32)
        """1 + the first id of each bucket's list (0: empty; pages untouched until written)."""
        self._pool = np.zeros((1024, 32), np.uint8)
        self._pool_n = np.zeros(1, np.int64)
        self._log_pos = np.zeros(1024, np.int64)
        self._log_prev = np.zeros(1024, np.int64)
        self._log_n = np.zeros(1, np.int64)
        self._serial = 0
        self._frozen_peaks = np.zeros((1, 32), np.uint8)
        self._frozen_lo = np.zeros(room, np.int64)
        if frozen is not None and n:
            self._count[:n] = frozen.counts
            self._root[:n] = frozen.roots
            self._names[:n] = frozen.accounts.view(np.uint8).reshape(n, 32)
            self._listed[:n] = 1
            self._frozen_peaks = frozen.peaks
            self._frozen_lo[:n] = frozen.peaks_lo
            ids = np.arange(n)
            same = frozen.buckets[1:] == frozen.buckets[:-1]  # sorted: a bucket is a run
            self._next[:n][:-1][same] = ids[1:][same]
            firsts = np.flatnonzero(np.diff(frozen.buckets, prepend=-1))
            self._head[frozen.buckets[firsts]] = firsts + 1
        self.positions: Mapping[bytes, array[int]] = _View(self, self._positions_of, self._keys)
        self.peaks: Mapping[bytes, list[bytes]] = _View(self, self._peaks_of, self._keys)
        self.entries: Mapping[bytes, bytes] = _View(self, self._entry_of, self._keys)
        self.buckets: Mapping[int, list[bytes]] = _View(self, self._members, self._bucket_keys)
        self.bucket_tree = hashtree.BucketTree(DEPTH, _DEFAULTS)
        self._open: TouchStage | None = None

    # -- reading --------------------------------------------------------------------------

    def _id(self, account: bytes) -> int:
        """The id of a touched account, or -1."""
        if not isinstance(account, bytes):
            return -1
        found = self._ids.get(account)
        if found is not None:
            return found
        return -1 if self._frozen is None else self._frozen.find(account)

    def _keys(self) -> Iterator[bytes]:
        return (self._names[a].tobytes() for a in range(self._n))

    def _bucket_keys(self) -> Iterator[int]:
        return iter(np.flatnonzero(self._head).tolist())

    def _positions_of(self, account: bytes) -> array[int] | None:
        a = self._id(account)
        if a < 0:
            return None
        held = array("Q")
        frozen = self._frozen
        if frozen is not None and a < len(frozen.accounts):
            held = frozen.positions_of(a)
        added = []
        k = int(self._last[a])
        while k >= 0:
            added.append(int(self._log_pos[k]))
            k = int(self._log_prev[k])
        held.extend(reversed(added))
        return held

    def _peaks_of(self, account: bytes) -> list[bytes] | None:
        a = self._id(account)
        if a < 0:
            return None
        n, at = int(self._count[a]), int(self._at[a])
        if at < 0:
            assert self._frozen is not None  # (only a map built whole has peaks elsewhere)
            return self._frozen.peaks_of(a)
        return [self._pool[at + i].tobytes() for i in reversed(range(n.bit_length())) if n >> i & 1]

    def _entry_of(self, account: bytes) -> bytes | None:
        a = self._id(account)
        if a < 0:
            return None
        return entry(account, int(self._count[a]), self._root[a].tobytes())

    def _members(self, b: Any) -> list[bytes] | None:
        if not isinstance(b, int) or not 0 <= b < len(self._head):
            return None
        out = []
        a = int(self._head[b]) - 1
        while a >= 0:
            out.append(self._names[a].tobytes())
            a = int(self._next[a])
        return out or None

    @classmethod
    def from_columns(
        cls, id0: np.ndarray, id1: np.ndarray, positions: np.ndarray, names: np.ndarray, height: int
    ) -> TouchMap:
        """The map after block ``height`` from the columnar index: rows (in global order) with
        the dense ids of their access sets (``id1 == id0`` for a one-account access set), their
        packed positions, and the account of each dense id (``names``, 32-byte ``V32``). Leaves,
        mountain ranges and the bucket tree are hashed by the Numba BLAKE3 kernels; the result
        equals :func:`build` over the same blocks (tested)."""
        one = id1 == id0
        ids = np.concatenate([id0.astype(np.int64), id1[~one].astype(np.int64)])
        pos = np.concatenate([positions, positions[~one]]).astype(np.int64)
        order = np.lexsort((pos, ids))
        ids, pos = ids[order], pos[order]
        found, starts, counts = np.unique(ids, return_index=True, return_counts=True)
        peaks, first, roots = hashtree.mountains(hashtree.leaf_hashes(pos), starts, counts)
        accounts = names[found]
        by = np.argsort(accounts, kind="stable")  # sorted by account: buckets are runs
        frozen = _Frozen(
            accounts[by],
            starts[by],
            counts[by],
            pos,
            peaks,
            first[:-1][by],
            first[1:][by],
            roots[by],
        )
        touches = cls(frozen)
        touches.height = height
        hashes = _bucket_hashes(frozen)
        buckets = np.unique(frozen.buckets)
        tree = touches.bucket_tree
        tree.load()  # (the kernels: the rest of this build needs them too)
        for lo in range(0, len(buckets), _CHUNK):
            tree.update(buckets[lo : lo + _CHUNK], hashes[lo : lo + _CHUNK])
        return touches

    def node_at(self, row: int) -> bytes:
        """The hash of one row of the bucket tree (its level's default if never written)."""
        found = self.bucket_tree.node(row)
        return DEFAULTS[DEPTH + 1 - row.bit_length()] if found == _ZERO else found

    def _settle(self) -> None:
        if self._open is not None:
            self._open.rollback()

    @property
    def root(self) -> bytes:
        self._settle()
        return self.node_at(1)

    def count(self, account: bytes) -> int:
        self._settle()
        a = self._id(account)
        return 0 if a < 0 else int(self._count[a])

    def stage(self) -> TouchStage:
        self._settle()
        self._serial += 1
        self._open = TouchStage(self)
        return self._open

    def prove(self, account: bytes, k: int) -> dict[str, Any]:
        """The prefix proof of ``account``'s first ``k`` touches (JSON-ready, hex hashes)."""
        self._settle()
        found = self.positions.get(account)
        touches = list(found) if found is not None else []
        if not 0 <= k <= len(touches):
            raise InvalidRequest(f"{k} touches asked of an account with {len(touches)}")
        right = right_hashes([leaf(p) for p in touches], k) if k else []
        b = bucket_of(account)
        others = [a for a in self.buckets.get(b, ()) if a != account]
        row = (1 << DEPTH) + b
        path = [self.node_at((row >> d) ^ 1).hex() for d in range(DEPTH)]
        return {
            "account": account.hex(),
            "count": len(touches),
            "right": [r.hex() for r in right],
            "bucket": [[a.hex(), self.count(a), self.entries[a][40:].hex()] for a in others],
            "path": path,
        }

    # -- writing (through a stage) --------------------------------------------------------

    _FRESH: ClassVar[Mapping[str, int]] = {"_last": -1, "_at": -1, "_stamp": -1, "_next": -1}
    """Per-account arrays whose unused rows hold -1 (the others hold zeros)."""
    _COLUMNS = ("_count", "_root", "_names", "_listed", "_frozen_lo", "_cap", *_FRESH)

    def _add_ids(self, accounts: Sequence[bytes], stage: TouchStage) -> None:
        """Ids for ``accounts`` (distinct, none with an id yet): their rows in the map built
        whole, or new ones (rows past ``_n`` hold the values of an untouched account)."""
        frozen = self._frozen
        if frozen is not None and len(frozen.accounts):
            rows = np.full(len(accounts), -1, np.int64)
            wanted = np.frombuffer(b"".join(accounts), "V32")
            at = np.searchsorted(frozen.accounts, wanted)
            hit = at < len(frozen.accounts)
            hit[hit] = frozen.accounts[at[hit]] == wanted[hit]
            rows[hit] = at[hit]
            found = rows.tolist()
            for a, r in zip(accounts, found, strict=True):
                if r >= 0:
                    self._ids[a] = r
            new = [a for a, r in zip(accounts, found, strict=True) if r < 0]
        else:
            new = list(accounts)
        first = self._n
        end = first + len(new)
        if not new:
            return
        if end > len(self._count):
            size = max(end, 2 * len(self._count))
            for name in self._COLUMNS:
                old = getattr(self, name)
                grown = np.full((size, *old.shape[1:]), self._FRESH.get(name, 0), old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
        self._names[first:end] = np.frombuffer(b"".join(new), np.uint8).reshape(-1, 32)
        self._ids.update(zip(new, range(first, end), strict=True))
        stage._new.extend(new)
        self._n = end

    def _clear(self, lo: int, hi: int) -> None:
        """Rows ``lo..hi`` back to the values of an untouched account (a rollback's ids)."""
        for name in self._COLUMNS:
            getattr(self, name)[lo:hi] = self._FRESH.get(name, 0)

    def _push(self, accounts: list[bytes], positions: list[int], stage: TouchStage) -> None:
        get = self._ids.get
        ids = [get(a, -1) for a in accounts]
        if -1 in ids:
            self._add_ids([a for a in dict.fromkeys(accounts) if a not in self._ids], stage)
            ids = [get(a, -1) for a in accounts]
        at = np.array(ids, np.int64)
        distinct = np.unique(at)
        self._pool = _grown(self._pool, int(self._pool_n[0]) + 192 * len(distinct))
        need = int(self._log_n[0]) + len(at)
        self._log_pos, self._log_prev = _grown(self._log_pos, need), _grown(self._log_prev, need)
        undo_ids = np.empty((len(distinct), 5), np.int64)
        undo_roots = np.empty((len(distinct), 32), np.uint8)
        undo_slots = np.empty(len(at), np.int64)
        undo_peaks = np.empty((len(at), 32), np.uint8)
        ka, ks = hashtree.push_touches(
            at, np.array(positions, np.int64), self._count, self._last, self._at, self._cap,
            self._root, self._stamp, self._serial, self._pool, self._pool_n,
            self._frozen_peaks, self._frozen_lo, self._log_pos, self._log_prev, self._log_n,
            undo_ids, undo_roots, undo_slots, undo_peaks,
        )  # fmt: skip
        stage._accounts.append((undo_ids[:ka], undo_roots[:ka]))
        stage._slots.append((undo_slots[:ks], undo_peaks[:ks]))
        stage._dirty.append(distinct)

    def _settle_accounts(self, dirty: np.ndarray, stage: TouchStage) -> None:
        undo_links = np.empty((3 * len(dirty), 3), np.int64)
        buckets, hashes, data, starts, ends, k = hashtree.settle_accounts(
            dirty, DEPTH, self._count, self._at, self._pool, self._root, self._names,
            self._listed, self._next, self._head, undo_links,
        )  # fmt: skip
        stage._links.append(undo_links[:k])
        for j in np.flatnonzero(ends - starts > 1024).tolist():  # crowded: several chunks
            message = data[starts[j] : ends[j]].tobytes()
            hashes[j] = np.frombuffer(blake3(message).digest(), np.uint8)
        stage._tree.append(self.bucket_tree.update(buckets, hashes))


class TouchStage:
    """Blocks added on top of a :class:`TouchMap`: the map's arrays and bucket tree are
    written in place, each write logged first, so that :meth:`rollback` (or the map's next use,
    if neither it nor :meth:`commit` is called) puts the map back as it was."""

    def __init__(self, base: TouchMap) -> None:
        self.base = base
        self.height = base.height
        self._n, self._pool_n, self._log_n = base._n, int(base._pool_n[0]), int(base._log_n[0])
        self._new: list[bytes] = []
        self._accounts: list[tuple[np.ndarray, np.ndarray]] = []
        self._slots: list[tuple[np.ndarray, np.ndarray]] = []
        self._links: list[np.ndarray] = []
        self._tree: list[tuple[np.ndarray, np.ndarray]] = []
        self._dirty: list[np.ndarray] = []

    def add_block(
        self, height: int, sections: Sequence[Sequence[Transaction]], *, root: bool = True
    ) -> bytes:
        """Add block ``height``'s touches; returns the ``touch_root`` after it (with
        ``root=False``, nothing: the entries and the bucket tree are brought up to date once,
        at :meth:`commit`, which is how a map is rebuilt from many stored blocks)."""
        if self.base._open is not self:
            raise ValueError("this touch stage was rolled back or committed")
        if height != self.height + 1:
            raise ValueError(f"block {height} does not follow touch height {self.height}")
        accounts: list[bytes] = []
        positions: list[int] = []
        for s, section in enumerate(sections):
            first = pack_position(height, s, 0)
            for i, tx in enumerate(section):
                access = tx.access()
                if len(access) > 2 or (len(access) == 2 and access[0] == access[1]):
                    access = tuple(dict.fromkeys(access))
                accounts += access
                positions += [first | i] * len(access)
        if accounts:
            self.base._push(accounts, positions, self)
        self.height = height
        return self._update() if root else b""

    def _update(self) -> bytes:
        if self._dirty:
            dirty = np.unique(np.concatenate(self._dirty))
            self._dirty = []
            self.base._settle_accounts(dirty, self)
        return self.base.node_at(1)

    def rollback(self) -> None:
        """Undo this stage's writes; the base map is as it was."""
        base = self.base
        for rows, values in reversed(self._tree):
            base.bucket_tree.restore(rows, values)
        columns: dict[int, np.ndarray] = {0: base._next, 1: base._head, 2: base._listed}
        for links in reversed(self._links):
            for kind, index, old in links[::-1].tolist():
                columns[kind][index] = old
        for slots, peaks in reversed(self._slots):
            for j in range(len(slots) - 1, -1, -1):
                base._pool[slots[j]] = peaks[j]
        for ids, roots in self._accounts:  # (each account logged once per stage)
            a = ids[:, 0]
            base._count[a], base._at[a], base._cap[a], base._last[a] = ids[:, 1:].T
            base._root[a] = roots
        for account in self._new:
            del base._ids[account]
        base._clear(self._n, base._n)
        base._n, base._pool_n[0], base._log_n[0] = self._n, self._pool_n, self._log_n
        self._tree, self._links, self._slots, self._accounts, self._new = [], [], [], [], []
        self._dirty = []
        if base._open is self:
            base._open = None

    def commit(self) -> None:
        """Make the staged blocks part of the base map."""
        base = self.base
        if base._open is not self:
            raise ValueError("this touch stage was rolled back or committed")
        self._update()
        base.height = self.height
        base._open = None
        self._tree, self._links, self._slots, self._accounts, self._new = [], [], [], [], []


def build(blocks: Iterable[tuple[int, Sequence[Sequence[Transaction]]]]) -> TouchMap:
    """A touch map over ``(height, sections)`` from block 1 on, in order."""
    touches = TouchMap()
    stage = touches.stage()
    for height, sections in blocks:
        stage.add_block(height, sections, root=False)
    stage.commit()
    return touches
