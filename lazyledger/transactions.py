"""Building and signing transactions."""

from __future__ import annotations

from collections.abc import Sequence

from lazyledger.crypto import Keypair, seal
from lazyledger.model import Transaction
from lazyledger.ops import (
    AnyCall,
    DnnClaim,
    DnnInfer,
    DnnJob,
    DnnReveal,
    Mint,
    Private,
    PublicCall,
    Swap,
    Transfer,
    TransferIf,
    job_account,
)


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


def transfer_if(
    kp: Keypair,
    *,
    nonce: int,
    to: bytes,
    asset: int,
    amount: int,
    register: int,
    equals: int,
    chain_id: str = "",
) -> Transaction:
    """A transfer that applies only if the sender's ``register`` holds ``equals`` (a class id
    written by :func:`dnn_infer`)."""
    return sign(kp, nonce, TransferIf(bytes(to), asset, amount, register, equals), chain_id)


def dnn_job(
    kp: Keypair,
    *,
    nonce: int,
    spec: bytes,
    train: bytes,
    validation: bytes,
    threshold_permille: int,
    asset: int,
    bounty: int,
    hidden: bool = False,
    chain_id: str = "",
) -> Transaction:
    """Post a training job (blob hashes of spec and data); ``job_account(tx.id)`` names it.
    With ``hidden``, the validation blob is withheld until :func:`dnn_reveal`."""
    call = DnnJob(
        bytes(spec), bytes(train), bytes(validation), threshold_permille, asset, bounty, hidden
    )
    return sign(kp, nonce, call, chain_id)


def dnn_reveal(kp: Keypair, *, nonce: int, job: bytes, chain_id: str = "") -> Transaction:
    """The job owner's reveal of a hidden validation set: claims close from here on (publish
    the blob itself with ``Ledger.put_blob``, or a node's ``PUT /blob``)."""
    return sign(kp, nonce, DnnReveal(bytes(job)), chain_id)


def dnn_claim(
    kp: Keypair, *, nonce: int, job: bytes, weights: bytes, chain_id: str = ""
) -> Transaction:
    """Claim the bounty of ``job`` (a job account) with the weights blob ``weights``."""
    return sign(kp, nonce, DnnClaim(bytes(job), bytes(weights)), chain_id)


def dnn_infer(
    kp: Keypair,
    *,
    nonce: int,
    job: bytes,
    inputs: bytes,
    register: int = 0,
    count: int = 1,
    chain_id: str = "",
) -> Transaction:
    """Classify the ``count`` samples of dataset blob ``inputs`` with the job's accepted model;
    results land in the sender's registers ``register ..``."""
    return sign(kp, nonce, DnnInfer(bytes(job), bytes(inputs), register, count), chain_id)


__all__ = [
    "dnn_claim",
    "dnn_infer",
    "dnn_job",
    "dnn_reveal",
    "job_account",
    "mint",
    "private",
    "sign",
    "swap",
    "transfer",
    "transfer_if",
]
