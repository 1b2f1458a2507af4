"""A materialiser's decryption keys for private transactions. Decrypted calls live only in
memory, for the replay that needs them; nothing decrypted is written anywhere."""

from __future__ import annotations

from collections.abc import Iterable

from lazyledger.crypto import Forged, Keypair, Sealed, unseal, x25519_secret
from lazyledger.errors import InvalidTransaction
from lazyledger.model import Genesis, Transaction
from lazyledger.ops import Private, PublicCall, Status, resolve_private, unpack_public_call


class Keyring:
    """Zero or more keys that open private transactions sealed to them."""

    def __init__(self, keys: Iterable[Keypair] = ()) -> None:
        self._secrets: dict[bytes, bytes] = {}
        for kp in keys:
            self.add(kp)

    def add(self, kp: Keypair) -> None:
        self._secrets[kp.public_key] = x25519_secret(kp)

    def __len__(self) -> int:
        return len(self._secrets)

    def can_open(self, envelope: Private) -> bool:
        """Whether some recipient entry is addressed to a key held here (cheap, no crypto)."""
        return any(k in self._secrets for k, _ in envelope.recipients)

    def open(self, tx: Transaction, genesis: Genesis) -> PublicCall | Status | None:
        """The call a private transaction stands for (or the status it fails with), or None if
        this keyring cannot read it."""
        envelope = tx.call
        if not isinstance(envelope, Private):
            raise TypeError("not a private transaction")
        if not self.can_open(envelope):
            return None
        sealed = Sealed(
            envelope.ephemeral, envelope.key_check, envelope.recipients, envelope.ciphertext
        )
        try:
            plaintext = unseal(sealed, self._secrets)
        except Forged:
            return Status.PRIVATE_INVALID  # the same verdict for every reader of the key
        if plaintext is None:
            return None
        try:
            inner = unpack_public_call(plaintext)
        except InvalidTransaction:
            return Status.PRIVATE_INVALID
        return resolve_private(genesis, tx.sender, envelope, inner)
