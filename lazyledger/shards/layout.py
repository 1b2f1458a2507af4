"""Sharding arithmetic: account-to-shard assignment and global transaction positions."""

from __future__ import annotations

MAX_SHARDS = 1024
MAX_SECTION_TXS = (1 << 20) - 1

Position = tuple[int, int, int]
"""(height, shard, index within the shard section): the global order of transactions."""


def shard_of(account: bytes, n_shards: int) -> int:
    """The shard an account (and every transaction it sends) belongs to."""
    return int.from_bytes(account[:8], "big") % n_shards


def pack_position(height: int, shard: int, index: int) -> int:
    """A position as one integer that sorts in global order."""
    return (height << 32) | (shard << 20) | index


def unpack_position(packed: int) -> Position:
    return (packed >> 32, (packed >> 20) & 0xFFF, packed & 0xFFFFF)


def end_of(height: int) -> int:
    """The packed position just after every transaction of blocks 1..height."""
    return (height + 1) << 32
