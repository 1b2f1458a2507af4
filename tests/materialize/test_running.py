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


def test_an_asset_first_seen_mid_chain_widens_the_balances(tmp_path: Path) -> None:
    """An asset declared at genesis but held by nobody appears with a mint in a later segment:
    the running replay widens its balance columns and stays exact (policies over it too)."""
    kp = [ll.Keypair.from_seed(bytes([0x70 + i]) * 32) for i in range(3)]
    genesis = ll.Genesis(
        "widen", 2, [kp[0].public_key], {0: kp[0].account, 9: kp[0].account},
        {kp[0].account: {0: 100}, kp[1].account: {0: 50}}, {},
    )  # fmt: skip
    txs = [
        ll.transfer(kp[0], nonce=0, to=kp[1].account, asset=0, amount=7),
        ll.transfer(kp[1], nonce=0, to=kp[2].account, asset=9, amount=1),  # fails: none held
        ll.mint(kp[0], nonce=1, to=kp[2].account, asset=9, amount=40),
        ll.transfer(kp[2], nonce=0, to=kp[1].account, asset=9, amount=15),
        ll.transfer(kp[1], nonce=1, to=kp[0].account, asset=0, amount=3),
    ]
    with ll.Ledger.create(tmp_path / "c", genesis) as led:
        blocks = []
        for tx in txs:
            blocks.append(led.propose([tx], kp[0]))
            led.append(blocks[-1])
        columns, _ = led._index()
        ids = {k.account: led._account_id(k.account) for k in kp}
        running = RunningReplay(led._genesis_sorted())
        assert running.assets.tolist() == [0]
        for h in range(1, len(blocks) + 1):
            running.advance(columns.rows[running.done : columns.count_before(end_of(h))])
            ref, _ = replay_chain(genesis, blocks[:h])
            got_ids, counts, assets, values = running.snapshot(
                np.array(sorted(ids.values()), np.int64)
            )
            at, got = 0, {}
            for k, c in zip(got_ids.tolist(), counts.tolist(), strict=True):
                pairs = zip(assets[at : at + c].tolist(), values[at : at + c].tolist(), strict=True)
                got[k] = dict(pairs)
                at += c
            for a, k in ids.items():  # (an account the rows have not reached yet holds nothing)
                assert got.get(k, {}) == ref.get(a, ll.AccountState(0, {})).balances, (h, k)
        assert running.assets.tolist() == [0, 9]
        assert led.run_checkpoint_policy(ll.CheckpointPolicy.epochs(every=2)) > 0
        assert {a: led.state(a) for a in ids} == {a: ref[a] for a in ids}
