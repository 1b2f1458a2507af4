"""The running eager replay behind checkpoint policies: exact for every untainted account."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lazyledger as ll
from lazyledger.materialize.reference import replay_chain
from lazyledger.materialize.running import RunningReplay
from lazyledger.shards import end_of
from lazyledger.workloads import Workload


@pytest.mark.parametrize(
    ("shape", "private"), [("adversarial", 0.0), ("amm", 0.0), ("uniform", 0.15), ("zipf", 0.1)]
)
def test_snapshots_equal_the_reference_and_taint_covers_private(
    tmp_path: Path, shape: str, private: float
) -> None:
    wl = Workload(shape, n_accounts=30, n_shards=3, seed=6, private_share=private)
    with ll.Ledger.create(tmp_path / "c", wl.genesis()) as led:
        blocks = list(wl.blocks(led, 12, 15))
        columns, _ = led._index()
        names = {
            int(k): bytes(a)
            for k, a in zip(
                columns.rows["id0"][: columns.n], columns.rows["acc0"][: columns.n], strict=True
            )
        }
        names |= {
            int(k): bytes(a)
            for k, a in zip(
                columns.rows["id1"][: columns.n], columns.rows["acc1"][: columns.n], strict=True
            )
        }
        for a in led.genesis.balances:
            k = led._account_id(a)
            assert k is not None
            names[k] = a
        running = RunningReplay(led._genesis_sorted())
        tainted_somewhere = False
        for h in (2, 5, 9, 12):
            hi = columns.count_before(end_of(h))
            running.advance(columns.rows[running.done : hi])
            ref, _ = replay_chain(led.genesis, blocks[:h], ll.Keyring(wl.keys))
            everyone = np.array(sorted(names), np.int64)
            ids, counts, assets, values = running.snapshot(everyone)
            tainted_somewhere |= len(ids) < len(everyone)
            at = 0
            for k, c in zip(ids.tolist(), counts.tolist(), strict=True):
                held = dict(
                    zip(assets[at : at + c].tolist(), values[at : at + c].tolist(), strict=True)
                )
                at += c
                state = ref.get(names[k], ll.AccountState(0, {}))
                assert held == {**state.balances, **state.storage}, (h, names[k].hex())
        assert tainted_somewhere == (private > 0)
