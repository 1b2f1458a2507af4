"""Building and signing transactions."""

from __future__ import annotations

from collections.abc import Sequence

from lazyledger.crypto import Keypair, seal
from lazyledger.model import Transaction
from lazyledger.ops import AnyCall, Mint, Private, PublicCall, Swap, Transfer


def sign(kp: Keypair, nonce: int, call: AnyCall, chain_id: str = "") -> Transaction:
    """A transaction carrying ``call``, signed by ``kp``. A non-empty ``chain_id`` binds it to one
    chain (it is then refused elsewhere); an empty one is valid on any chain."""
    unsigned = Transaction(chain_id, kp.public_key, nonce, call, b"")
    return Transaction(chain_id, kp.public_key, nonce, call, kp.sign(unsigned.body))


def transfer(
    kp: Keypair, *, nonce: int, to: bytes, asset: int, amount: int, chain_id: str = ""
) -> Transaction:
    """Send ``amount`` of ``asset`` to account ``to``."""
    return sign(kp, nonce, Transfer(bytes(to), asset, amount), chain_id)


def mint(
    kp: Keypair, *, nonce: int, to: bytes, asset: int, amount: int, chain_id: str = ""
) -> Transaction:
    """Issue ``amount`` of ``asset`` (``kp`` must be its issuer) to account ``to``."""
    return sign(kp, nonce, Mint(bytes(to), asset, amount), chain_id)


def swap(
    kp: Keypair,
    *,
    nonce: int,
    pool: bytes,
    asset_in: int,
    amount_in: int,
    min_out: int = 0,
    chain_id: str = "",
) -> Transaction:
    """Trade ``amount_in`` of ``asset_in`` against ``pool`` for at least ``min_out``."""
    return sign(kp, nonce, Swap(bytes(pool), asset_in, amount_in, min_out), chain_id)


def private(
    kp: Keypair,
    *,
    nonce: int,
    call: PublicCall,
    recipients: Sequence[bytes],
    access: Sequence[bytes] | None = None,
    chain_id: str = "",
) -> Transaction:
    """``call`` sealed to ``recipients`` (Ed25519 public keys; include the sender's own key to
    keep reading it). Its access set (default: the call's) stays public."""
    sealed = seal(bytes([call.OP]) + call.pack(), recipients)
    accounts = (
        tuple(access) if access is not None else tuple(dict.fromkeys(call.access(kp.account)))
    )
    envelope = Private(
        accounts, sealed.ephemeral, sealed.key_check, sealed.recipients, sealed.ciphertext
    )
    return sign(kp, nonce, envelope, chain_id)
