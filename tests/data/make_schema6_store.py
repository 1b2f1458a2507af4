"""Write ``schema6-store.tar.gz`` and ``schema6-store.json``: a small schema-6 ledger (three
shards; transfers, mints, swaps, private transactions, a blob and stored checkpoints) and what
it answers. The committed files were written by the code of main at a616885, before the table
registry; ``tests/test_tables.py`` checks that the current code opens it and answers the same.

Run from the repository root: ``python tests/data/make_schema6_store.py``."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

import lazyledger as ll
from lazyledger.workloads import Workload

HERE = Path(__file__).resolve().parent


def _state(st: ll.AccountState) -> dict[str, object]:
    return {"nonce": st.nonce, "balances": {str(k): v for k, v in sorted(st.balances.items())}}


def main() -> None:
    wl = Workload("uniform", n_accounts=12, n_shards=3, seed=6)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain"
        with ll.Ledger.create(path, wl.genesis(), map_size=1 << 24) as led:
            for _ in range(3):
                led.append(led.propose(wl.transactions(20), wl.issuer))
            led.checkpoint_min_rows = 1
            accounts = sorted({k.account for k in wl.keys} | {wl.pool})
            for a in accounts[:4]:
                led.state(a, height=2)
            wl.private_share = 0.2
            for _ in range(3):
                led.append(led.propose(wl.transactions(20), wl.issuer))
            blob = led.put_blob(b"a blob kept across versions")
            keyring = ll.Keyring(wl.keys)
            answers = {
                "height": led.height,
                "head_id": led.head_id.hex(),
                "blob": blob.hex(),
                "states": {a.hex(): _state(led.state(a, keyring=keyring)) for a in accounts},
                "states_at_3": {
                    a.hex(): _state(led.state(a, height=3, keyring=keyring)) for a in accounts
                },
            }
            answers["checkpoints"] = led.checkpoint_count()  # (the queries above wrote some)
        with tarfile.open(HERE / "schema6-store.tar.gz", "w:gz") as tar:
            tar.add(path, arcname="chain")
        (HERE / "schema6-store.json").write_text(json.dumps(answers, indent=1) + "\n")


if __name__ == "__main__":
    main()
