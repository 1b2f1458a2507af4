"""Checkpoint policies: which accounts to checkpoint, and when, as blocks are appended.

A checkpoint changes the cost of later queries, never their results. A policy runs at every
``every``-th height, after the block is durable (never on the append's durability path):

- ``hubs(top, every)``: the ``top`` accounts with the most touches in the last ``every`` blocks
  (ties: lower dense id first), so slices that cross a hub stop at its recent checkpoint
  instead of dragging in its whole history;
- ``epochs(every)``: every account touched in the last ``every`` blocks. Each epoch's
  materialisation replays only that epoch's rows, because every account it touches was
  checkpointed at the end of the last epoch that touched it (incremental, like a state diff).

A policy never runs a DNN claim check on its own, never writes a state built from decrypted
data: accounts whose slice holds a private transaction or a claim are skipped."""

from __future__ import annotations

import attrs
import numpy as np

from lazyledger.errors import InvalidRequest

KINDS = ("hubs", "epochs")


@attrs.frozen
class CheckpointPolicy:
    """Which accounts get a checkpoint at every ``every``-th height."""

    kind: str
    every: int
    top: int = 0

    def __attrs_post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidRequest(f"unknown checkpoint policy {self.kind!r}; pick one of {KINDS}")
        for name, value, low in (("every", self.every, 1), ("top", self.top, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidRequest(f"checkpoint policy {name} must be an integer >= {low}")
        if self.kind == "hubs" and self.top < 1:
            raise InvalidRequest("checkpoint policy hubs needs top >= 1")

    @classmethod
    def hubs(cls, top: int = 500, every: int = 20) -> CheckpointPolicy:
        """The ``top`` most active accounts of the last ``every`` blocks, every ``every``
        blocks."""
        return cls("hubs", every, top)

    @classmethod
    def epochs(cls, every: int = 20) -> CheckpointPolicy:
        """Every account touched in the last ``every`` blocks, every ``every`` blocks."""
        return cls("epochs", every)

    def due(self, height: int) -> bool:
        return height > 0 and height % self.every == 0

    def pick(self, ids: np.ndarray) -> np.ndarray:
        """Dense ids to checkpoint, given the account ids of the window's rows (-1: empty)."""
        ids = ids[ids >= 0]
        if self.kind == "epochs":  # (a mark per id: cheaper than np.unique's hashing or a sort)
            seen = np.zeros(int(ids.max(initial=-1)) + 1, bool)
            seen[ids] = True
            return np.flatnonzero(seen)
        counts = np.bincount(ids)
        touched = np.flatnonzero(counts)
        order = np.lexsort((touched, -counts[touched]))  # most touches first, then lower id
        return np.sort(touched[order[: self.top]])
