"""Careless input to the library gets a typed LedgerError naming the problem: never a bare
ValueError, never a silently padded, cut or wrapped value."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import lazyledger as ll
from lazyledger.node.config import genesis_from_toml, genesis_to_toml

KP = ll.Keypair.from_seed(b"\x07" * 32)


@pytest.mark.parametrize("kind", ["bogus", "weights:zz", "weights:abc", "weights:" + "00" * 31])
def test_put_blob_refuses_unknown_kinds(ledger: ll.Ledger, kind: str) -> None:
    with pytest.raises(ll.InvalidRequest):
        ledger.put_blob(b"x", kind=kind)


@pytest.mark.parametrize("to", [b"\x12\x34", b"", b"\x01" * 31, b"\x01" * 33])
def test_account_ids_are_never_padded_or_cut(to: bytes) -> None:
    with pytest.raises(ll.InvalidTransaction, match="to must be 32 bytes"):
        ll.transfer(KP, nonce=0, to=to, asset=0, amount=5)


@pytest.mark.parametrize(("field", "value"), [("amount", -5), ("amount", 2**64), ("asset", -1)])
def test_out_of_range_integers_name_their_field(field: str, value: int) -> None:
    args = {"to": b"\x01" * 32, "asset": 0, "amount": 5, field: value}
    with pytest.raises(ll.InvalidTransaction, match=f"transfer {field} {value} outside"):
        ll.transfer(KP, nonce=0, **args)  # type: ignore[arg-type]


def test_header_heights_beyond_the_encodable_range_are_refused(
    ledger: ll.Ledger, keys: list[ll.Keypair]
) -> None:
    block = ledger.propose([], keys[0])
    raw = bytearray(block.to_bytes())
    header = block.header.to_bytes()
    at = raw.index(header) + header.index((1).to_bytes(8, "big"))
    raw[at : at + 8] = (2**63).to_bytes(8, "big")
    with pytest.raises(ll.InvalidBlock, match=r"height \d+ out of range"):
        ll.Block.from_bytes(bytes(raw))
    with pytest.raises(ll.InvalidBlock, match="out of range"):
        attrs.evolve(block.header, height=2**63).to_bytes()


def test_too_many_shards_is_named(tmp_path: Path, genesis: ll.Genesis) -> None:
    doc = genesis_to_toml(genesis)
    doc["n_shards"] = 4_000_000
    with pytest.raises(ll.InvalidGenesis, match=r"n_shards 4000000 outside 1\.\."):
        ll.Ledger.create(tmp_path / "chain", genesis_from_toml(doc))
