"""What sharding is, in three layers of its own:

- :mod:`~lazyledger.shards.layout` (re-exported here): account-to-shard assignment and
  global transaction positions, below everything else;
- :mod:`~lazyledger.shards.merkle`, :mod:`~lazyledger.shards.hashtree`,
  :mod:`~lazyledger.shards.lookup`: per-shard roots, the Numba BLAKE3 tree kernels and the
  prefix lookup tables, at the same level;
- :mod:`~lazyledger.shards.store` and :mod:`~lazyledger.shards.reader`: the per-shard store
  (a shard's section writer beside its rollback) and the sharded reader (sections, hosted
  transactions and index records across shards, in global order), in the storage layer.

This module imports only the layout, so the layers below storage may import it."""

from __future__ import annotations

from lazyledger.shards.layout import (
    MAX_SECTION_TXS,
    MAX_SHARDS,
    Position,
    end_of,
    pack_position,
    shard_of,
    unpack_position,
)

__all__ = [
    "MAX_SECTION_TXS",
    "MAX_SHARDS",
    "Position",
    "end_of",
    "pack_position",
    "shard_of",
    "unpack_position",
]
