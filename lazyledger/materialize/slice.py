"""Dependency slices: the backward closure of DESIGN.md, computed from the access-set index
alone (no block is decoded), cut at stored checkpoints.

Positions are packed integers (see :mod:`lazyledger.shards`); "state of A before p" is the state
after every transaction at a position below p. To know A before p we need A's state at some cut
c <= p (genesis, or a checkpoint) and every transaction that touches A in [c, p); each of those
in turn needs the state of every account it touches just before it. The closure grows each
account's interval until nothing changes; intervals only widen, so it terminates."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import cast

import attrs
import lmdb

from lazyledger.store import Store, decode_holdings, read_u64, u64, unseal

Holdings = dict[int, int]


@attrs.frozen
class Slice:
    """The transactions to replay and, for every account they touch, the cut it starts from:
    (position, holdings before it). ``raw`` maps 8-byte big-endian positions (they sort in
    global order) to replay rows."""

    raw: dict[bytes, bytes]
    cuts: dict[bytes, tuple[int, Holdings]]

    @property
    def rows(self) -> dict[int, bytes]:
        """Packed integer position -> replay row."""
        return {int.from_bytes(p, "big"): row for p, row in self.raw.items()}

    def positions(self) -> list[int]:
        return sorted(int.from_bytes(p, "big") for p in self.raw)


class Reader:
    """Read transactions on every environment of a store, for one materialisation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.shard_txns = [env.read() for env in store.shards]
        self.cache_txn = store.cache.read()
        self.touch = [env.db["touch"] for env in store.shards]
        self._cursors = [
            txn.cursor(db) for txn, db in zip(self.shard_txns, self.touch, strict=True)
        ]
        self.sent = [env.db["sent"] for env in store.shards]
        self.checkpoints = store.cache.db["checkpoints"]

    def close(self) -> None:
        for txn in (*self.shard_txns, self.cache_txn):
            txn.abort()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cursors(self) -> list[lmdb.Cursor]:
        """One cursor on the access-set index of each shard (reused across scans)."""
        return self._cursors

    def checkpoint(self, account: bytes, at_most: int) -> tuple[int, Holdings] | None:
        """The latest stored checkpoint of ``account`` at a position <= ``at_most``."""
        try:
            cur = self.cache_txn.cursor(self.checkpoints)
            if cur.set_range(account + u64(at_most + 1)):
                if not cur.prev():
                    return None
            elif not cur.last():
                return None
            key = bytes(cur.key())
            value = unseal(key, cur.value())
        except lmdb.Error:
            return None
        if key[:32] != account or value is None:
            return None  # none, or damaged by a system crash (the cache skips fsync): no cut
        return read_u64(key, 32), decode_holdings(value)

    def sent_count(self, account: bytes, shard: int, height: int) -> int:
        """Transactions ``account`` sent in blocks 1..height (its nonce after ``height``)."""
        cur = self.shard_txns[shard].cursor(self.sent[shard])
        found = cur.set_range(account + u64(height + 1))
        if not (cur.prev() if found else cur.last()):
            return 0
        key = bytes(cur.key())
        return read_u64(cur.value()) if key[:32] == account else 0


def closure(
    reader: Reader,
    needs: Mapping[bytes, int],
    initial: Callable[[bytes], Holdings],
    use_checkpoints: bool = True,
) -> Slice:
    """The slice that gives the state of each ``account`` before position ``needs[account]``.

    ``initial(account)`` gives genesis holdings, used where no checkpoint cuts the closure.
    Positions are handled as 8-byte big-endian keys here (the index's own form): fewer
    conversions in the loop that runs once per index entry."""
    lo: dict[bytes, bytes] = {}
    hi: dict[bytes, bytes] = {}
    fetched: dict[bytes, tuple[bytes, bytes]] = {}
    cuts: dict[bytes, tuple[bytes, Holdings]] = {}
    rows: dict[bytes, bytes] = {}
    work: list[bytes] = []
    genesis = u64(0)
    for account, p in needs.items():
        lo[account] = hi[account] = u64(p)
        work.append(account)
    while work:
        a = work.pop()
        need_lo, need_hi = lo[a], hi[a]
        prev = fetched.get(a)
        if prev is not None and prev[0] <= need_lo and need_hi <= prev[1]:
            continue
        if prev is None or need_lo < prev[0]:
            found = reader.checkpoint(a, read_u64(need_lo)) if use_checkpoints else None
            cuts[a] = (u64(found[0]), found[1]) if found is not None else (genesis, initial(a))
        cut = cuts[a][0]
        if prev is None:
            ranges = [(cut, need_hi)]
            fetched[a] = (cut, need_hi)
        else:
            top = max(need_hi, prev[1])
            ranges = [(cut, prev[0]), (prev[1], top)]
            fetched[a] = (cut, top)
        for r_lo, r_hi in ranges:
            if r_lo >= r_hi:
                continue
            stop = a + r_hi
            for cur in reader.cursors:  # the index of every shard holds entries for `a`
                if not cur.set_range(a + r_lo):
                    continue
                for key, row in cast("Iterator[tuple[bytes, bytes]]", cur.iternext()):
                    if key >= stop:
                        break
                    pos = key[32:]
                    if pos in rows:
                        continue
                    rows[pos] = row
                    b = row[26:58]  # the row's access set is {acc0, acc1}; one of them is `a`
                    if b == a:
                        b = row[58:90]
                        if b == a:
                            continue
                    blo = lo.get(b)
                    if blo is None:
                        lo[b] = hi[b] = pos
                        work.append(b)
                        continue
                    if pos < blo:
                        lo[b] = pos
                    if pos > hi[b]:
                        hi[b] = pos
                    f = fetched.get(b)
                    if f is None or pos < f[0] or pos > f[1]:
                        work.append(b)
    for account in lo:  # accounts reached but whose interval needed no fetch
        if account not in cuts:
            cuts[account] = (genesis, initial(account))
    return Slice(rows, {a: (int.from_bytes(p, "big"), held) for a, (p, held) in cuts.items()})
