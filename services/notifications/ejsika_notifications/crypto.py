"""Webhook signing secrets encrypted at rest, with keys from `EJSIKA_SECRETS_KEYS`.

The setting is a comma-separated list of Fernet keys (AES-128-CBC with HMAC-SHA256): the first
encrypts, every one decrypts. To rotate: prepend a new key, restart the replicas, run
`python -m ejsika_notifications.rotate_secrets`, then drop the old key. Make a key with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEYS_SETTING = "EJSIKA_SECRETS_KEYS"


class SecretsKeysError(ValueError):
    """The keys setting is missing or malformed. The message never holds a key."""


class UndecryptableSecret(Exception):
    """No configured key decrypts a stored secret (its key was dropped before a rotation)."""


class SecretCipher:
    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise SecretsKeysError(f"{KEYS_SETTING} holds no key")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise SecretsKeysError(
                    f"{KEYS_SETTING}: key {number} of {len(keys)} is not a Fernet key"
                    " (32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretCipher:
        """From the setting's comma-separated keys, the primary (encrypting) one first."""
        return cls([key.strip() for key in value.split(",") if key.strip()])

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise UndecryptableSecret("no key of " + KEYS_SETTING + " decrypts the stored secret") from None

    def rotate(self, token: bytes) -> bytes:
        """The secret of `token` encrypted again with the primary key."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise UndecryptableSecret("no key of " + KEYS_SETTING + " decrypts the stored secret") from None


def new_key() -> str:
    return Fernet.generate_key().decode()
