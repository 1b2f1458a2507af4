"""Signature checks: the compiled batch verifier against libsodium's one-at-a-time check."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from lazyledger.crypto import Keypair, first_bad_signature, start_verification, verify

KEYS = [Keypair.from_seed(bytes([i]) * 32) for i in range(4)]


def _signed(rng: random.Random, n: int) -> list[tuple[bytes, bytes]]:
    items = []
    for _ in range(n):
        kp = rng.choice(KEYS)
        msg = rng.randbytes(rng.choice([0, 1, 31, 150, 700]))
        items.append((kp.public_key, kp.sign(msg) + msg))
    return items


def _spoil(rng: random.Random, item: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    pk, sm = item
    how = rng.randrange(6)
    if how == 0:  # a bit of the signature
        i = rng.randrange(64)
        return pk, sm[:i] + bytes([sm[i] ^ (1 << rng.randrange(8))]) + sm[i + 1 :]
    if how == 1 and len(sm) > 64:  # a bit of the message
        i = rng.randrange(64, len(sm))
        return pk, sm[:i] + bytes([sm[i] ^ 1]) + sm[i + 1 :]
    if how == 2:  # another key
        other = next(k.public_key for k in KEYS if k.public_key != pk)
        return other, sm
    if how == 3:  # a key of the wrong length
        return pk[: rng.choice([0, 31])] if rng.random() < 0.5 else pk + b"\x00", sm
    if how == 4:  # shorter than a signature
        return pk, sm[: rng.randrange(64)]
    return pk, sm + b"!"  # a longer message than was signed


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batch_agrees_with_single_checks(workers: int) -> None:
    rng = random.Random(workers)
    with ThreadPoolExecutor(workers) as pool:
        for n in (0, 1, 2, 15, 64, 201):
            items = _signed(rng, n)
            assert first_bad_signature(items, pool, workers) is None
            assert first_bad_signature(items) is None
            if not n:
                continue
            spoiled = list(items)
            bad = sorted(rng.sample(range(n), min(n, rng.randint(1, 3))))
            for i in bad:
                spoiled[i] = _spoil(rng, spoiled[i])
            truth = [verify(pk, sm[64:], sm[:64]) if len(sm) >= 64 else False for pk, sm in spoiled]
            first = next((i for i, ok in enumerate(truth) if not ok), None)
            assert first is not None
            assert first_bad_signature(spoiled, pool, workers) == first
            assert first_bad_signature(spoiled) == first


def test_verification_overlaps_the_caller() -> None:
    """The checks run while the caller goes on; the result is the same when it waits."""
    rng = random.Random(7)
    items = _signed(rng, 40)
    items[33] = _spoil(rng, items[33])
    with ThreadPoolExecutor(2) as pool:
        finish = start_verification(items, pool, 2)
        assert sum(range(10_000)) == 49_995_000  # (the caller's own work)
        assert finish() == 33
        assert finish() == 33  # asking again gives the same answer


def test_verify_one() -> None:
    kp = KEYS[0]
    sig = kp.sign(b"hello")
    assert verify(kp.public_key, b"hello", sig)
    assert not verify(kp.public_key, b"hellO", sig)
    assert not verify(KEYS[1].public_key, b"hello", sig)
    assert not verify(kp.public_key[:31], b"hello", sig)
