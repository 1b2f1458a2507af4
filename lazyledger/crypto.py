"""Ed25519 keys and signatures (libsodium through PyNaCl). Account id = blake3(public key)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs
import blake3
import nacl.utils
from nacl._sodium import ffi, lib  # libsodium's own entry points: no per-call Python wrapping
from nacl.signing import SigningKey

_SIG = 64


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


def first_bad_signature(
    items: Sequence[tuple[bytes, bytes]], pool: ThreadPoolExecutor | None = None, workers: int = 1
) -> int | None:
    """Index of the first item whose signed message ``sig || msg`` does not verify under its
    key, or None if all verify. Chunks run in parallel on ``pool`` (libsodium drops the GIL)."""
    n = len(items)
    if n == 0:
        return None
    if pool is None or n < 64 or workers < 2:
        ok = _verify_range(items, 0, n)
    else:
        step = -(-n // workers)
        bounds = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
        ok = sum(pool.map(lambda b: _verify_range(items, *b), bounds))
    if ok == n:
        return None
    for i, (pk, sm) in enumerate(items):  # rare path: locate the culprit for the error message
        if _verify_range([(pk, sm)], 0, 1) == 0:
            return i
    return None
