"""Secrets at rest: encrypted with the first key, readable with any, rotated by re-encrypting;
settings refuse to run without a key outside development."""

import secrets

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from fulfilkit.settings import token_digest
from webhooks.sealing import DEVELOPMENT_KEY, SecretSealer, SecretUnreadable, is_sealed
from webhooks.settings import WebhookSettings
from webhooks.signing import new_secret

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_sealed_secret_reads_back_and_does_not_contain_the_secret() -> None:
    sealer = SecretSealer([OLD])
    secret = new_secret()
    sealed = sealer.seal(secret)
    assert is_sealed(sealed) and secret not in sealed and secret[6:] not in sealed
    assert sealer.open(sealed) == secret
    assert sealer.seal(secret) != sealed, "each encryption is fresh (random IV)"


def test_plaintext_from_before_encryption_still_reads() -> None:
    secret = new_secret()
    assert not is_sealed(secret)
    assert SecretSealer([OLD]).open(secret) == secret


def test_key_rotation_add_new_first_reseal_then_drop_old() -> None:
    secret = new_secret()
    stored = SecretSealer([OLD]).seal(secret)
    during = SecretSealer([NEW, OLD])
    assert during.open(stored) == secret, "both keys decrypt while rotating"
    resealed = during.reseal(stored)
    after = SecretSealer([NEW])
    assert after.open(resealed) == secret, "re-encrypted with the first key"
    with pytest.raises(SecretUnreadable, match="not readable with any key"):
        after.open(stored)


def test_reseal_encrypts_plaintext() -> None:
    secret = new_secret()
    resealed = SecretSealer([NEW]).reseal(secret)
    assert is_sealed(resealed) and SecretSealer([NEW]).open(resealed) == secret


GATEWAY_CALLER = {"gateway": token_digest(secrets.token_urlsafe(32))}


def test_outside_development_a_key_is_required() -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET_KEYS must be set"):
        WebhookSettings(environment="production", internal_callers=GATEWAY_CALLER)
    with pytest.raises(ValidationError, match="public development key"):
        WebhookSettings(
            environment="production",
            internal_callers=GATEWAY_CALLER,
            webhook_secret_keys=f"{NEW},{DEVELOPMENT_KEY}",
        )
    settings = WebhookSettings(
        environment="production",
        internal_callers=GATEWAY_CALLER,
        webhook_secret_keys=f" {NEW} , {OLD} ",
    )
    assert settings.secret_keys == [NEW, OLD]
    assert NEW not in repr(settings)


def test_in_development_the_public_key_stands_in() -> None:
    assert WebhookSettings(environment="development").secret_keys == [DEVELOPMENT_KEY]


@pytest.mark.parametrize("keys", ["not-a-key", f"{NEW},short", "x" * 44])
def test_malformed_keys_are_refused_by_position(keys: str) -> None:
    with pytest.raises(ValidationError, match="of WEBHOOK_SECRET_KEYS is not a Fernet key"):
        WebhookSettings(webhook_secret_keys=keys)
