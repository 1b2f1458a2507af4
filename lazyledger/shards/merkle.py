"""Binary blake3 Merkle trees over transaction ids (RFC 6962 shape, domain-separated).

leaf = H(0x00 || id); node = H(0x01 || left || right); the split is at the largest power of two
below the leaf count; the root of no leaves is H(b"")."""

from __future__ import annotations

from collections.abc import Sequence

from blake3 import blake3

EMPTY_ROOT = blake3(b"").digest()


def _leaf(item: bytes) -> bytes:
    return blake3(b"\x00" + item).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return blake3(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_root(hashes[:k]), _root(hashes[k:]))


def root(items: Sequence[bytes]) -> bytes:
    """The Merkle root of ``items`` (transaction ids)."""
    if not items:
        return EMPTY_ROOT
    # Bottom-up over levels gives the same tree as the recursive split, without recursion.
    level = [_leaf(x) for x in items]
    return _root_levels(level)


def _root_levels(level: list[bytes]) -> bytes:
    n = len(level)
    if n & (n - 1) == 0:  # perfect tree: pair up level by level
        while len(level) > 1:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    k = _split(n)
    return _node(_root_levels(level[:k]), _root_levels(level[k:]))


def proof(items: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of ``items[index]``, leaf side first."""
    if not 0 <= index < len(items):
        raise IndexError(f"leaf {index} outside 0..{len(items) - 1}")
    path: list[bytes] = []
    hashes = [_leaf(x) for x in items]
    lo, hi = 0, len(hashes)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_root_levels(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_root_levels(hashes[lo : lo + k]))
            lo = lo + k
    return path[::-1]


def verify(root_hash: bytes, item: bytes, index: int, count: int, path: Sequence[bytes]) -> bool:
    """Whether ``path`` proves ``item`` is leaf ``index`` of ``count`` under ``root_hash``."""
    if not 0 <= index < count:
        return False
    # Recompute the sequence of splits top-down, then fold the path bottom-up.
    sides: list[bool] = []  # True: the sibling is on the right
    lo, hi = 0, count
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            sides.append(True)
            hi = lo + k
        else:
            sides.append(False)
            lo = lo + k
    if len(sides) != len(path):
        return False
    h = _leaf(item)
    for sibling, right in zip(path, reversed(sides), strict=True):
        h = _node(h, sibling) if right else _node(sibling, h)
    return h == root_hash
