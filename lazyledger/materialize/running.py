"""One eager pass over the chain, paused wherever a checkpoint policy is due.

A checkpoint policy needs, at every due height, the states of the accounts it picks. Replaying
each of them from its last cut would cost a slice per due height; instead this keeps every
account's balances in one dense ``ids x assets`` array and advances it with the replay kernel,
segment by segment, so a policy over the whole chain costs about one ``replay_all`` plus its
snapshots (a vectorised gather per due height).

Rows the kernel cannot apply alone (private transactions, DNN claims and inferences) are not
applied: the accounts they touch are *tainted*, and so is every account a later row puts in
contact with a tainted one. A tainted account's balances are unknown here and it is never
checkpointed (a policy never decrypts and never runs a check of its own); an untainted
account only ever met untainted ones, so its balances are exact."""

from __future__ import annotations

import numpy as np
from numba import njit

from lazyledger.materialize import kernel
from lazyledger.materialize.replay import InitialArrays
from lazyledger.materialize.rows import id_matrix, width_of
from lazyledger.ops import REGISTRY

_OPAQUE = np.array(sorted(REGISTRY.opaque), np.uint8)


@njit(cache=True)
def _taint(op: np.ndarray, ids: np.ndarray, opaque: np.ndarray, t: np.ndarray) -> None:
    """Spread taint through the rows in order: an opaque row, or a row touching a tainted
    account, taints every one of its accounts (``ids``: rows x width)."""
    for i in range(op.shape[0]):
        hit = False
        for k in range(ids.shape[1]):
            if t[ids[i, k]]:
                hit = True
        if not hit:
            for o in opaque:
                if op[i] == o:
                    hit = True
                    break
        if hit:
            for k in range(ids.shape[1]):
                t[ids[i, k]] = True


@njit(cache=True)
def _taint_pair(
    op: np.ndarray, id0: np.ndarray, id1: np.ndarray, opaque: np.ndarray, t: np.ndarray
) -> None:
    """:func:`_taint` for rows of two accounts, read from their id columns."""
    for i in range(op.shape[0]):
        a, b = id0[i], id1[i]
        hit = t[a] or t[b]
        if not hit:
            for o in opaque:
                if op[i] == o:
                    hit = True
                    break
        if hit:
            t[a] = True
            t[b] = True


@njit(cache=True)
def _column(assets: np.ndarray, asset: int) -> int:
    """The column of ``asset`` in the sorted ``assets`` (-1: none)."""
    lo, hi = 0, assets.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if assets[mid] < asset:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < assets.shape[0] and assets[lo] == asset else -1


@njit(cache=True)
def _pair_slots(
    id0: np.ndarray, id1: np.ndarray, asset: np.ndarray, asset2: np.ndarray, assets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The four balance slots (account x ``len(assets)`` + column) rows of two accounts read
    and write, and the largest id; -1 in its place if an asset has no column yet."""
    m, width = id0.shape[0], assets.shape[0]
    s0, s1, s2, s3 = (
        np.empty(m, np.int64),
        np.empty(m, np.int64),
        np.empty(m, np.int64),
        np.empty(m, np.int64),
    )
    top = 0
    for i in range(m):
        x, x2 = _column(assets, asset[i]), _column(assets, asset2[i])
        if x < 0 or x2 < 0:
            return s0, s1, s2, s3, -1
        a, b = int(id0[i]), int(id1[i])
        s0[i], s1[i], s2[i], s3[i] = a * width + x, b * width + x, a * width + x2, b * width + x2
        top = max(top, a, b)
    return s0, s1, s2, s3, top


class RunningReplay:
    """Balances of every account after the first ``done`` rows of the chain."""

    def __init__(self, genesis: InitialArrays) -> None:
        self.done = 0
        self.assets = np.unique(genesis.assets)
        self.balances = np.zeros((0, len(self.assets)), np.int64)
        self.taint = np.zeros(0, bool)
        self._grow(int(genesis.ids.max(initial=-1)) + 1, self.assets)
        self.balances[genesis.ids, np.searchsorted(self.assets, genesis.assets)] = genesis.values

    def _grow(self, n_ids: int, assets: np.ndarray) -> None:
        """Room for ``n_ids`` accounts and every asset of ``assets`` (existing values kept)."""
        merged = np.union1d(self.assets, assets)
        rows = max(n_ids, len(self.balances))
        if rows == len(self.balances) and len(merged) == len(self.assets):
            return
        grown = np.zeros((max(rows, 2 * len(self.balances)), len(merged)), np.int64)
        grown[: len(self.balances), np.searchsorted(merged, self.assets)] = self.balances
        taint = np.zeros(len(grown), bool)
        taint[: len(self.taint)] = self.taint
        self.balances, self.assets, self.taint = grown, merged, taint

    def _columns(self, assets: np.ndarray) -> np.ndarray | None:
        """The column of each of ``assets`` (None if one has none yet)."""
        x: np.ndarray = np.searchsorted(self.assets, assets)
        if len(x) and (x.max() >= len(self.assets) or np.any(self.assets[x] != assets)):
            return None
        return x

    def advance(self, rows: np.ndarray) -> None:
        """Apply the next rows of the chain (replay rows, real dense ids, global order)."""
        if not len(rows):
            return
        if width_of(rows) == 2:
            self._advance_pairs(rows)
            return
        ids = id_matrix(rows)
        x, x2 = self._columns(rows["asset"]), self._columns(rows["asset2"])
        if x is None or x2 is None:  # an asset seen for the first time: widen, then look again
            self._grow(0, np.union1d(rows["asset"], rows["asset2"]))
            x, x2 = self._columns(rows["asset"]), self._columns(rows["asset2"])
            assert x is not None and x2 is not None
        self._grow(int(ids.max()) + 1, self.assets)
        width = len(self.assets)
        op = rows["op"]
        flat = self.balances.reshape(-1)
        status = np.zeros(len(rows), np.uint8)
        args: tuple[np.ndarray, ...]
        if ids.shape[1] > 2:
            sa, sb = ids * width + x[:, None], ids * width + x2[:, None]
            v = np.empty(ids.shape, np.int64)
            v[:, 0], v[:, 1] = rows["amount"], rows["min_out"]
            for j in range(2, ids.shape[1]):
                v[:, j] = rows[f"v{j}"]
            args, replay = (op, sa, sb, v, flat), kernel.current_wide()
        else:
            id0, id1 = ids[:, 0] * width, ids[:, 1] * width
            slots = (id0 + x, id1 + x, id0 + x2, id1 + x2)
            args = (op, *slots, rows["amount"], rows["min_out"], flat)
            replay = kernel.current()
        done = replay(*args, status, 0)
        while done < len(rows):  # an opaque row: skipped here, its accounts tainted below
            done = replay(*args, status, done + 1)
        _taint(op, ids, _OPAQUE, self.taint)
        self.done += len(rows)

    def _advance_pairs(self, rows: np.ndarray) -> None:
        """:meth:`advance` for rows of two accounts: slots, columns and taint in compiled
        passes over the rows' fields (no id matrix, no per-column searches)."""
        id0, id1, op = rows["id0"], rows["id1"], rows["op"]
        found = _pair_slots(id0, id1, rows["asset"], rows["asset2"], self.assets)
        if found[4] < 0:  # an asset seen for the first time: widen, then look again
            self._grow(0, np.union1d(rows["asset"], rows["asset2"]))
            found = _pair_slots(id0, id1, rows["asset"], rows["asset2"], self.assets)
            assert found[4] >= 0
        *slots, top = found
        self._grow(top + 1, self.assets)
        status = np.zeros(len(rows), np.uint8)
        args = (op, *slots, rows["amount"], rows["min_out"], self.balances.reshape(-1))
        replay = kernel.current()
        done = replay(*args, status, 0)
        while done < len(rows):  # an opaque row: skipped here, its accounts tainted below
            done = replay(*args, status, done + 1)
        _taint_pair(op, id0, id1, _OPAQUE, self.taint)
        self.done += len(rows)

    def snapshot(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ids, holdings per id, assets, values) of the untainted ``ids`` (sorted), holdings
        listed id by id, assets ascending, zero balances left out."""
        ids = ids[(ids < len(self.taint))]
        ids = ids[~self.taint[ids]]
        block = self.balances[ids]
        held = block != 0
        counts = held.sum(axis=1)
        assets = np.broadcast_to(self.assets, block.shape)[held]
        return ids, counts, assets.astype(np.int64), block[held]
