"""Signing secrets are stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256).

`WEBHOOK_SECRET_KEYS` lists Fernet keys, comma-separated: the first encrypts, every one
decrypts, so a key is rotated by putting a new one first, restarting, re-encrypting
(`python -m webhooks.reseal`) and then dropping the old one (docs/webhooks.md).
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from webhooks.signing import SECRET_PREFIX

# Accepted only with ENVIRONMENT=development: it is public, so it protects nothing.
DEVELOPMENT_KEY = "21_wiJu18xT6Tscjsq2G8S9tQBZQz6bN6d4jKGn_NLE="


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts."""


def parse_keys(text: str) -> list[str]:
    """The keys of `WEBHOOK_SECRET_KEYS`, checked; ValueError names the bad one by position."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key {position} of WEBHOOK_SECRET_KEYS is not a Fernet key (32 url-safe"
                " base64-encoded bytes)"
            ) from None
    return keys


def is_sealed(stored: str) -> bool:
    """Plaintext secrets (stored before encryption) keep their `whsec_` prefix."""
    return not stored.startswith(SECRET_PREFIX)


class SecretSealer:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.open = lru_cache(maxsize=4096)(self._open)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def _open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored webhook secret is not readable with any key of WEBHOOK_SECRET_KEYS"
            ) from None

    def open_optional(self, stored: str | None) -> str | None:
        return None if stored is None else self.open(stored)

    def reseal(self, stored: str) -> str:
        """Encrypted anew with the first key (plaintext is sealed too)."""
        if not is_sealed(stored):
            return self.seal(stored)
        try:
            return self._fernet.rotate(stored.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored webhook secret is not readable with any key of WEBHOOK_SECRET_KEYS"
            ) from None
