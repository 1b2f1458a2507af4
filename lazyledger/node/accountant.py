"""The accountant service: a state together with the evidence a light client needs to check it.

The answer carries the account's dependency slice computed *without* checkpoints (so it starts
from genesis), each slice transaction in canonical bytes with its Merkle audit path against the
shard root of its block header, and those headers. :func:`lazyledger.client.verify_state`
checks it; the JSON shape is documented there."""

from __future__ import annotations

from typing import Any

from lazyledger.ledger import Ledger
from lazyledger.model import Transaction
from lazyledger.shards.merkle import proof


def prove_state(ledger: Ledger, account: bytes, height: int | None = None) -> dict[str, Any]:
    """The state of ``account`` at ``height`` (default: head) with its slice and proofs."""
    h = ledger.height if height is None else height
    state = ledger.state(account, h)
    positions = ledger.slice(account, h, use_checkpoints=False)
    sections: dict[tuple[int, int], list[Transaction]] = {}
    ids: dict[tuple[int, int], list[bytes]] = {}
    txs: list[dict[str, Any]] = []
    for bh, s, i in positions:
        key = (bh, s)
        if key not in sections:
            sections[key] = ledger.section(bh, s)
            ids[key] = [t.id for t in sections[key]]
        txs.append(
            {
                "position": [bh, s, i],
                "tx": sections[key][i].raw.hex(),
                "path": [p.hex() for p in proof(ids[key], i)],
            }
        )
    heights = sorted({p[0] for p in positions} | ({h} if h > 0 else set()))
    return {
        "account": account.hex(),
        "height": h,
        "nonce": state.nonce,
        "balances": {str(a): v for a, v in sorted(state.balances.items())},
        "storage": {str(a): v for a, v in sorted(state.storage.items())},
        "proof": {
            "genesis_id": ledger.genesis_id.hex(),
            "headers": [ledger.header(x).to_bytes().hex() for x in heights],
            "txs": txs,
        },
    }
