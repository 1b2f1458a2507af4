"""The accountant service: a state together with the evidence a light client needs to check it.

The answer carries the account's dependency slice computed *without* checkpoints (so it starts
from genesis), each slice transaction in canonical bytes with its Merkle audit path against the
shard root of its block header, those headers, and for every account the slice touches (and the
account asked for) the proof that the slice holds a prefix of its touch list (all of it, for
the account asked for) against the ``touch_root`` of the header at the answer's height
(:mod:`lazyledger.touches`, each proof in its compact form, ``touches.encode_proof``).
:class:`lazyledger.client.LightClient` checks it; the JSON shape is documented in
:mod:`lazyledger.client`."""

from __future__ import annotations

from typing import Any

from lazyledger.ledger import Ledger
from lazyledger.model import Transaction
from lazyledger.shards.merkle import proof
from lazyledger.touches import encode_proof


def prove_state(ledger: Ledger, account: bytes, height: int | None = None) -> dict[str, Any]:
    """The state of ``account`` at ``height`` (default: head) with its slice and proofs."""
    h = ledger.height if height is None else height
    state = ledger.state(account, h)
    positions = ledger.slice(account, h, use_checkpoints=False)
    sections: dict[tuple[int, int], list[Transaction]] = {}
    ids: dict[tuple[int, int], list[bytes]] = {}
    txs: list[dict[str, Any]] = []
    touched: dict[bytes, int] = {account: 0}  # account -> touches in the slice
    for bh, s, i in positions:
        key = (bh, s)
        if key not in sections:
            sections[key] = ledger.section(bh, s)
            ids[key] = [t.id for t in sections[key]]
        tx = sections[key][i]
        for a in dict.fromkeys(tx.access()):
            touched[a] = touched.get(a, 0) + 1
        txs.append(
            {
                "position": [bh, s, i],
                "tx": tx.raw.hex(),
                "path": [p.hex() for p in proof(ids[key], i)],
            }
        )
    heights = sorted({p[0] for p in positions} | ({h} if h > 0 else set()))
    touches = ledger.touch_proofs(touched, h) if h > 0 else {}
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
            "touches": [
                {"account": a.hex(), "proof": encode_proof(touches[a])} for a in sorted(touches)
            ],
        },
    }


def prove_slice(ledger: Ledger, account: bytes, height: int | None = None) -> dict[str, Any]:
    """``/slice?proof=1``: the slice's positions with the same evidence as :func:`prove_state`
    (a light client checks that the positions are exactly the complete slice)."""
    answer = prove_state(ledger, account, height)
    return {
        "account": answer["account"],
        "height": answer["height"],
        "positions": [t["position"] for t in answer["proof"]["txs"]],
        "proof": answer["proof"],
    }
