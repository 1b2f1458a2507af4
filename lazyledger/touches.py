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
from bisect import insort
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

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


def _push(peaks: list[bytes], count: int, h: bytes) -> None:
    """Append leaf hash ``h`` to the mountain range of ``count`` leaves."""
    while count & 1:
        h = node(peaks.pop(), h)
        count >>= 1
    peaks.append(h)


def _bag(peaks: Sequence[bytes]) -> bytes:
    r = peaks[-1]
    for p in reversed(peaks[:-1]):
        r = node(p, r)
    return r


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

    def entry_of(self, j: int) -> bytes:
        a = self.accounts[j].tobytes()
        return entry(a, int(self.counts[j]), self.roots[j].tobytes())

    def members(self, b: int) -> list[bytes]:
        lo, hi = np.searchsorted(self.buckets, [b, b + 1])
        return [a.tobytes() for a in self.accounts[lo:hi]]


_MISSING: Any = object()


class _Layered(MutableMapping[Any, Any]):
    """A dict over a :class:`_Frozen` base: what was set here wins; the rest reads the base."""

    def __init__(self, base: _Frozen | None, read: Callable[[_Frozen, Any], Any]) -> None:
        self.base, self.read = base, read
        self.over: dict[Any, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        if key in self.over:
            return self.over[key]
        if self.base is not None:
            found = self.read(self.base, key)
            if found is not None:
                return found
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        found = self.over.get(key, _MISSING)
        if found is not _MISSING:
            return found
        if self.base is not None:
            found = self.read(self.base, key)
            if found is not None:
                return found
        return default

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key: Any, value: Any) -> None:
        self.over[key] = value

    def __delitem__(self, key: Any) -> None:
        raise TypeError("touch maps only grow")

    def _base_keys(self) -> Iterator[Any]:
        return iter(())

    def __iter__(self) -> Iterator[Any]:
        yield from (k for k in self._base_keys() if k not in self.over)
        yield from self.over

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _ByAccount(_Layered):
    def _base_keys(self) -> Iterator[Any]:
        if self.base is None:
            return iter(())
        return (a.tobytes() for a in self.base.accounts)


class _ByBucket(_Layered):
    def _base_keys(self) -> Iterator[Any]:
        if self.base is None:
            return iter(())
        return iter(np.unique(self.base.buckets).tolist())


def _read(method: str) -> Callable[[_Frozen, bytes], Any]:
    def read(base: _Frozen, account: bytes) -> Any:
        j = base.find(account) if isinstance(account, bytes) else -1
        return None if j < 0 else getattr(base, method)(j)

    return read


def _read_members(base: _Frozen, b: int) -> list[bytes] | None:
    return base.members(b) or None


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


class TouchMap:
    """The touch commitment after block ``height``, kept in memory: every touched account's
    touch list, mountain-range peaks and entry, the buckets, and the bucket tree
    (``hashtree.BucketTree``: only the rows written, dense once they are many). Change it
    only through :meth:`stage`; a stage that is neither committed nor rolled back is rolled
    back by the next use of the map."""

    def __init__(self, frozen: _Frozen | None = None) -> None:
        self.height = 0
        self.positions: MutableMapping[bytes, array[int]] = _ByAccount(
            frozen, _read("positions_of")
        )
        self.peaks: MutableMapping[bytes, list[bytes]] = _ByAccount(frozen, _read("peaks_of"))
        self.entries: MutableMapping[bytes, bytes] = _ByAccount(frozen, _read("entry_of"))
        self.buckets: MutableMapping[int, list[bytes]] = _ByBucket(frozen, _read_members)
        self.bucket_tree = hashtree.BucketTree(DEPTH, _DEFAULTS)
        self._open: TouchStage | None = None

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
        found = self.positions.get(account)
        return 0 if found is None else len(found)

    def stage(self) -> TouchStage:
        self._settle()
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
            "bucket": [
                [a.hex(), len(self.positions[a]), self.entries[a][40:].hex()] for a in others
            ],
            "path": path,
        }


class TouchStage:
    """Blocks added on top of a :class:`TouchMap`: the accounts' side is kept apart until
    :meth:`commit`; the bucket tree is rewritten in place with an undo log, which
    :meth:`rollback` (or the map's next use, if neither is called) replays."""

    def __init__(self, base: TouchMap) -> None:
        self.base = base
        self.height = base.height
        self._new: dict[bytes, list[int]] = {}
        self._peaks: dict[bytes, list[bytes]] = {}
        self._counts: dict[bytes, int] = {}
        self._entries: dict[bytes, bytes] = {}
        self._buckets: dict[int, list[bytes]] = {}
        self._dirty: set[bytes] = set()
        self._undo: list[tuple[np.ndarray, np.ndarray]] = []

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
        new, peaks, counts, dirty = self._new, self._peaks, self._counts, self._dirty
        base_positions, base_peaks = self.base.positions, self.base.peaks
        for s, section in enumerate(sections):
            first = pack_position(height, s, 0)
            for i, tx in enumerate(section):
                position = first | i
                h = blake3(b"\x00" + position.to_bytes(8, "big")).digest()  # leaf(position)
                access = tx.access()
                if len(access) > 2 or (len(access) == 2 and access[0] == access[1]):
                    access = tuple(dict.fromkeys(access))
                for a in access:
                    n = counts.get(a)
                    if n is None:
                        old = base_positions.get(a)
                        n = 0 if old is None else len(old)
                        peaks[a] = list(base_peaks.get(a, ()))
                        new[a] = [position]
                    else:
                        new[a].append(position)
                    if n & 1:
                        _push(peaks[a], n, h)
                    else:
                        peaks[a].append(h)
                    counts[a] = n + 1
                    dirty.add(a)
        self.height = height
        return self._update() if root else b""

    def _update(self) -> bytes:
        touched: set[int] = set()
        base = self.base
        for a in self._dirty:
            pk = self._peaks[a]
            self._entries[a] = entry(a, self._counts[a], pk[0] if len(pk) == 1 else _bag(pk))
            b = bucket_of(a)
            members = self._buckets.get(b)
            if members is None:
                members = self._buckets[b] = list(base.buckets.get(b, ()))
            if a not in base.entries and a not in members:
                insort(members, a)
            touched.add(b)
        self._dirty = set()
        if touched:
            order = sorted(touched)
            hashes = np.frombuffer(
                b"".join(
                    bucket_hash(
                        self._entries[a] if a in self._entries else base.entries[a]
                        for a in self._buckets[b]
                    )
                    for b in order
                ),
                np.uint8,
            ).reshape(len(order), 32)
            self._undo.append(base.bucket_tree.update(np.array(order, np.int64), hashes))
        return base.node_at(1)

    def rollback(self) -> None:
        """Undo this stage's rewrites of the bucket tree; the base map is as it was."""
        tree = self.base.bucket_tree
        for rows, values in reversed(self._undo):
            tree.restore(rows, values)
        self._undo = []
        if self.base._open is self:
            self.base._open = None

    def commit(self) -> None:
        """Make the staged blocks part of the base map."""
        base = self.base
        if base._open is not self:
            raise ValueError("this touch stage was rolled back or committed")
        if self._dirty:
            self._update()
        for a, added in self._new.items():
            found = base.positions.get(a)
            if found is None:
                found = array("Q")
            found.extend(added)
            base.positions[a] = found  # (a layered map hands out copies of its base)
            base.peaks[a] = self._peaks[a]
            base.entries[a] = self._entries[a]
        base.buckets.update(self._buckets)
        base.height = self.height
        base._open = None
        self._undo = []


def build(blocks: Iterable[tuple[int, Sequence[Sequence[Transaction]]]]) -> TouchMap:
    """A touch map over ``(height, sections)`` from block 1 on, in order."""
    touches = TouchMap()
    stage = touches.stage()
    for height, sections in blocks:
        stage.add_block(height, sections, root=False)
    stage.commit()
    return touches
