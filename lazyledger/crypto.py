"""Ed25519 keys and signatures (libsodium through PyNaCl). Account id = blake3(public key)."""

from __future__ import annotations

import ctypes
import functools
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs
import blake3
import nacl._sodium
import nacl.utils
import numpy as np
from nacl._sodium import ffi, lib  # libsodium's own entry points: no per-call Python wrapping
from nacl.signing import SigningKey
from numba import njit

_SIG = 64


@functools.lru_cache(maxsize=1 << 16)
def account_of(public_key: bytes) -> bytes:
    """The 32-byte account id of an Ed25519 public key."""
    return blake3.blake3(public_key).digest()


@attrs.frozen(slots=True)
class Keypair:
    """An Ed25519 signing key and the account it controls."""

    seed: bytes = attrs.field(repr=False)
    public_key: bytes = attrs.field(init=False)
    account: bytes = attrs.field(init=False)
    _key: SigningKey = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = SigningKey(self.seed)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "public_key", bytes(key.verify_key))
        object.__setattr__(self, "account", account_of(bytes(key.verify_key)))

    @classmethod
    def from_seed(cls, seed: bytes) -> Keypair:
        return cls(bytes(seed))

    @classmethod
    def generate(cls) -> Keypair:
        return cls(nacl.utils.random(32))

    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte signature of ``message``."""
        return bytes(self._key.sign(message).signature)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check one detached signature."""
    return _verify_range([(public_key, signature + message)], 0, 1) == 1


def _verify_range(items: Sequence[tuple[bytes, bytes]], lo: int, hi: int) -> int:
    """Count valid signatures in ``items[lo:hi]``; libsodium runs without the GIL."""
    longest = max((len(sm) for _, sm in items[lo:hi]), default=_SIG)
    out = ffi.new("unsigned char[]", longest)
    out_len = ffi.new("unsigned long long *")
    open_ = lib.crypto_sign_open
    ok = 0
    for pk, sm in items[lo:hi]:
        if len(pk) == 32 and open_(out, out_len, sm, len(sm), pk) == 0:
            ok += 1
    return ok


_DETACHED = ctypes.CDLL(nacl._sodium.__file__).crypto_sign_verify_detached
"""libsodium's ``crypto_sign_verify_detached`` (in PyNaCl's own build), called from compiled
code so that a whole batch runs without the GIL."""
_DETACHED.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_void_p]
_DETACHED.restype = ctypes.c_int


@njit(nogil=True, cache=True)
def _verify_batch(fn, buf, at, size, lo, hi):  # type: ignore[no-untyped-def]
    """Valid items among ``lo:hi``; item i is ``pk || sig || msg`` at ``buf[at[i]:][:size[i]]``
    (a size under 96 is invalid)."""
    ok = 0
    for i in range(lo, hi):
        n = size[i]
        if n >= 96:
            p = buf[at[i] :].ctypes.data
            if fn(p + 32, p + 96, n - 96, p) == 0:
                ok += 1
    return ok


def _packed(items: Sequence[tuple[bytes, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``items`` as one buffer of ``pk || sig || msg`` with each item's offset and size (0 for a
    key that is not 32 bytes, so the item fails)."""
    parts = [pk + sm for pk, sm in items]
    size = np.fromiter(map(len, parts), np.int64, len(parts))
    at = np.zeros(len(parts), np.int64)
    at[1:] = np.fromiter(itertools.accumulate(size[:-1].tolist()), np.int64, len(parts) - 1)
    size[[i for i, (pk, _) in enumerate(items) if len(pk) != 32]] = 0
    return np.frombuffer(b"".join(parts) or bytes(1), np.uint8), at, size


def start_verification(
    items: Sequence[tuple[bytes, bytes]], pool: ThreadPoolExecutor | None = None, workers: int = 1
) -> Callable[[], int | None]:
    """Start checking signed messages ``sig || msg`` against their keys on ``pool``, in
    ``workers`` chunks that each run as one compiled call without the GIL, so the caller's
    Python work overlaps with them. The returned function waits and gives the index of the first
    invalid item, or None."""
    n = len(items)
    buf, at, size = _packed(items)
    if pool is None or n == 0:
        futures = None
    else:
        step = -(-n // max(1, workers))
        futures = [
            pool.submit(_verify_batch, _DETACHED, buf, at, size, lo, min(n, lo + step))
            for lo in range(0, n, step)
        ]

    def finish() -> int | None:
        if futures is None:
            ok = _verify_batch(_DETACHED, buf, at, size, 0, n)
        else:
            ok = sum(f.result() for f in futures)
        if ok == n:
            return None
        for i, (pk, sm) in enumerate(items):  # rare path: locate the culprit for the message
            if _verify_range([(pk, sm)], 0, 1) == 0:
                return i
        return None

    return finish


def first_bad_signature(
    items: Sequence[tuple[bytes, bytes]], pool: ThreadPoolExecutor | None = None, workers: int = 1
) -> int | None:
    """Index of the first item whose signed message does not verify, or None if all do."""
    return start_verification(items, pool, workers)()


# -- sealing private calls to recipients -------------------------------------------------------
#
# A fresh 32-byte content key K encrypts the payload (ChaCha20-Poly1305-IETF, zero nonce: K is
# used once). For each recipient, K is wrapped under a key derived (blake3 derive_key) from an
# X25519 agreement between a fresh ephemeral key and the recipient's Ed25519 key converted to
# X25519. ``key_check`` = a blake3 commitment to K: everyone who can open the envelope opens the
# same K, hence reads the same call, so insiders agree on the state.

_ZERO_NONCE = bytes(12)
_PAYLOAD_AD = b"lazyledger/private/payload/v1"
_WRAP_CONTEXT = "lazyledger 2026 private wrap key v1"
_CHECK_CONTEXT = "lazyledger 2026 private key check v1"


@attrs.frozen
class Sealed:
    ephemeral: bytes
    key_check: bytes
    recipients: tuple[tuple[bytes, bytes], ...]
    ciphertext: bytes


def _kek(shared: bytes, ephemeral: bytes, recipient_x: bytes) -> bytes:
    return blake3.blake3(
        shared + ephemeral + recipient_x, derive_key_context=_WRAP_CONTEXT
    ).digest()


def seal(plaintext: bytes, recipients: Sequence[bytes]) -> Sealed:
    """Encrypt ``plaintext`` to the holders of the Ed25519 public keys ``recipients``."""
    from nacl import bindings as b

    e_sk = nacl.utils.random(32)
    e_pk = b.crypto_scalarmult_base(e_sk)
    key = nacl.utils.random(32)
    wrapped = []
    for r in recipients:
        r_x = b.crypto_sign_ed25519_pk_to_curve25519(bytes(r))
        kek = _kek(b.crypto_scalarmult(e_sk, r_x), e_pk, r_x)
        wrapped.append(
            (bytes(r), b.crypto_aead_chacha20poly1305_ietf_encrypt(key, bytes(r), _ZERO_NONCE, kek))
        )
    ct = b.crypto_aead_chacha20poly1305_ietf_encrypt(
        plaintext, _PAYLOAD_AD + e_pk, _ZERO_NONCE, key
    )
    check = blake3.blake3(key, derive_key_context=_CHECK_CONTEXT).digest()
    return Sealed(e_pk, check, tuple(wrapped), ct)


def x25519_secret(kp: Keypair) -> bytes:
    """The X25519 secret matching ``kp``'s Ed25519 key (for opening sealed payloads)."""
    from nacl import bindings as b

    return bytes(b.crypto_sign_ed25519_sk_to_curve25519(kp.seed + kp.public_key))


class Forged(Exception):
    """The content key opened, but the payload does not authenticate under it."""


def unseal(sealed: Sealed, secrets: dict[bytes, bytes]) -> bytes | None:
    """The plaintext, if one of ``secrets`` (Ed25519 public key -> X25519 secret) opens the
    content key; None if none does. Raises Forged if the key opens (and matches ``key_check``)
    but the payload fails authentication: everyone who can open the key sees the same."""
    from nacl import bindings as b
    from nacl.exceptions import CryptoError

    for r, wrapped in sealed.recipients:
        secret = secrets.get(r)
        if secret is None:
            continue
        try:
            r_x = b.crypto_scalarmult_base(secret)
            kek = _kek(b.crypto_scalarmult(secret, sealed.ephemeral), sealed.ephemeral, r_x)
            key = b.crypto_aead_chacha20poly1305_ietf_decrypt(wrapped, r, _ZERO_NONCE, kek)
        except (CryptoError, ValueError, TypeError):
            continue  # this entry was not sealed for our key: try another
        if blake3.blake3(key, derive_key_context=_CHECK_CONTEXT).digest() != sealed.key_check:
            continue
        try:
            return bytes(
                b.crypto_aead_chacha20poly1305_ietf_decrypt(
                    sealed.ciphertext, _PAYLOAD_AD + sealed.ephemeral, _ZERO_NONCE, key
                )
            )
        except (CryptoError, ValueError, TypeError):
            raise Forged(
                "the private payload does not authenticate under its committed key"
            ) from None
    return None
