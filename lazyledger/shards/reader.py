"""The sharded reader: what one block or a run of blocks holds across the shard environments,
in global order (height, then shard), read through the tables' codecs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lazyledger.model import Transaction
from lazyledger.shards.layout import unpack_position
from lazyledger.tables import BODIES, HOSTED, ROWS

if TYPE_CHECKING:
    from lazyledger.store import Store


def section_bytes(store: Store, height: int, shard: int) -> bytes | None:
    """The canonical bytes of one shard section (None: the section is empty)."""
    env = store.shards[shard]
    with env.read() as txn:
        return env.get(txn, BODIES, height)


def body(store: Store, height: int, shard: int) -> bytes:
    """The canonical bytes of a section known to exist (StorageError if it is missing)."""
    env = store.shards[shard]
    with env.read() as txn:
        return env.need(txn, BODIES, height, f"the section {height}/{shard}")


def hosted(store: Store, pos: int) -> Transaction:
    """A transaction stored whole (private or DNN), by packed position."""
    env = store.shards[unpack_position(pos)[1]]
    with env.read() as txn:
        return env.need(txn, HOSTED, pos, "a hosted tx")


def records(store: Store, after: int, upto: int) -> list[tuple[int, int, bytes]]:
    """(height, shard, index record as stored: zstd) of every section of blocks
    after..upto, in global order."""
    found: list[tuple[int, int, bytes]] = []
    for s, env in enumerate(store.shards):
        with env.read() as txn:
            cur = txn.cursor(env.db[ROWS.name])
            if not cur.set_range(ROWS.key.encode(after + 1)):
                continue
            for key, value in cur:
                h = ROWS.key.decode(bytes(key))
                if h > upto:
                    break
                found.append((h, s, bytes(value)))
    found.sort(key=lambda x: (x[0], x[1]))
    return found
