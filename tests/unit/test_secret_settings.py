"""Fail closed: outside ENVIRONMENT=development no service starts with a missing, short or
well-known secret, or without the digests of the callers it answers."""

import json
import secrets

import pytest
from pydantic import ValidationError

from deploy.local.services import SERVICES, new_fernet_key, service_env
from fulfilkit.db_roles import SCHEMAS
from fulfilkit.db_roles import main as db_roles_main
from fulfilkit.settings import ServiceSettings, token_digest, weak_secret_reason
from fulfilment.settings import FulfilmentSettings
from gateway.settings import GatewaySettings
from orders.settings import OrdersSettings
from stock.settings import StockSettings
from webhooks.settings import WebhookSettings

STRONG = "s" + secrets.token_urlsafe(32)
GATEWAY_TOKEN = secrets.token_urlsafe(32)
FULFILMENT_TOKEN = secrets.token_urlsafe(32)
SETTINGS_OF = {
    "gateway": GatewaySettings,
    "orders": OrdersSettings,
    "stock": StockSettings,
    "fulfilment": FulfilmentSettings,
    "webhooks": WebhookSettings,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "ADMIN_TOKEN", "INTERNAL_TOKEN", "INTERNAL_CALLERS"):
        monkeypatch.delenv(name, raising=False)


def callers(*names: str) -> dict[str, str]:
    tokens = {"gateway": GATEWAY_TOKEN, "fulfilment": FULFILMENT_TOKEN}
    return {name: token_digest(tokens[name]) for name in names}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is missing"),
        ("short-but-random-Zq81", "is shorter than 32 characters"),
        ("dev-admin-token", "is shorter than 32 characters"),
        ("a" * 40, "is a well-known or trivially guessable value"),
        ("abababababababababababababababab", "is a well-known or trivially guessable value"),
        (STRONG, None),
    ],
)
def test_weak_secrets_are_named_with_the_reason(value: str, reason: str | None) -> None:
    assert weak_secret_reason(value) == reason


def test_the_environment_is_production_unless_said_otherwise() -> None:
    settings = StockSettings(internal_callers=callers("gateway"))
    assert settings.environment == "production" and not settings.is_development


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({}, "ADMIN_TOKEN is missing"),
        ({"admin_token": "dev-admin-token"}, "ADMIN_TOKEN is shorter than 32 characters"),
        ({"admin_token": "x" * 64}, "ADMIN_TOKEN is a well-known"),
        (
            {"admin_token": STRONG, "internal_token": "dev-internal-token"},
            "INTERNAL_TOKEN is shorter than 32 characters",
        ),
        ({"admin_token": STRONG}, "INTERNAL_TOKEN is missing"),
    ],
)
def test_the_gateway_refuses_weak_secrets_outside_development(
    fields: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        GatewaySettings(**fields)
    assert GatewaySettings(environment="development", **fields).is_development


def test_the_gateway_starts_with_strong_secrets_in_production() -> None:
    settings = GatewaySettings(admin_token=STRONG, internal_token=GATEWAY_TOKEN)
    assert settings.admin_token == STRONG and settings.internal_callers == {}


def test_weak_secrets_from_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "dev-admin-token")
    monkeypatch.setenv("INTERNAL_TOKEN", GATEWAY_TOKEN)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN is shorter"):
        GatewaySettings()
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert GatewaySettings().admin_token == "dev-admin-token"


def test_fulfilment_needs_its_own_strong_credential() -> None:
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN is missing"):
        FulfilmentSettings(internal_callers=callers("gateway"))
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN is shorter"):
        FulfilmentSettings(internal_callers=callers("gateway"), internal_token="dev-internal-token")
    assert FulfilmentSettings(internal_callers=callers("gateway"), internal_token=FULFILMENT_TOKEN)


@pytest.mark.parametrize(
    ("settings_class", "needed"),
    [
        (OrdersSettings, ("gateway", "fulfilment")),
        (StockSettings, ("gateway",)),
        (WebhookSettings, ("gateway",)),
    ],
)
def test_a_service_needs_the_digest_of_every_caller_it_answers(
    settings_class: type[ServiceSettings], needed: tuple[str, ...]
) -> None:
    for left_out in needed:
        given = callers(*(name for name in needed if name != left_out))
        with pytest.raises(
            ValidationError, match=f"INTERNAL_CALLERS lacks the digests of \\['{left_out}'\\]"
        ):
            settings_class(internal_callers=given)
    # webhooks also needs the key that encrypts its endpoints' secrets outside development
    keys = {"webhook_secret_keys": new_fernet_key()} if settings_class is WebhookSettings else {}
    assert settings_class(internal_callers=callers(*needed), **keys).internal_callers == (
        callers(*needed)
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"webhooks": "0" * 64}, "unknown callers \\['webhooks'\\]"),
        ({"gateway": GATEWAY_TOKEN}, "are not SHA-256 in hex"),
    ],
)
def test_internal_callers_are_known_services_with_digests(
    given: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        StockSettings(environment="development", internal_callers=given)


def test_a_caller_is_recognised_by_its_token_alone() -> None:
    settings = OrdersSettings(internal_callers=callers("gateway", "fulfilment"))
    assert settings.internal_caller(GATEWAY_TOKEN) == "gateway"
    assert settings.internal_caller(FULFILMENT_TOKEN) == "fulfilment"
    for wrong in (None, "", GATEWAY_TOKEN[:-1], token_digest(GATEWAY_TOKEN), "tök€n\udcff"):
        assert settings.internal_caller(wrong) is None


def test_the_launchers_secrets_pass_production_settings_and_stay_with_their_owner() -> None:
    tokens = {"gateway": GATEWAY_TOKEN, "fulfilment": FULFILMENT_TOKEN}
    webhook_key = new_fernet_key()
    base = {"ADMIN_TOKEN": STRONG, "ENVIRONMENT": "production", "WEBHOOK_SECRET_KEYS": webhook_key}
    for spec in SERVICES:
        env = service_env(spec.name, base, tokens)
        fields = {name.lower(): value for name, value in env.items()}
        fields["internal_callers"] = json.loads(fields["internal_callers"])
        settings = SETTINGS_OF[spec.name](**fields)
        assert settings.environment == "production"
        assert env.get("INTERNAL_TOKEN") == tokens.get(spec.name), spec.name
        assert ("ADMIN_TOKEN" in env) == (spec.name == "gateway"), spec.name
        assert ("WEBHOOK_SECRET_KEYS" in env) == (spec.name == "webhooks"), spec.name
    webhooks_env = service_env("webhooks", base, tokens)
    assert not {GATEWAY_TOKEN, FULFILMENT_TOKEN, STRONG} & set(webhooks_env.values())


def test_a_caller_may_have_two_digests_while_its_token_is_rotated() -> None:
    new_token = secrets.token_urlsafe(32)
    settings = StockSettings(
        internal_callers={"gateway": [token_digest(GATEWAY_TOKEN), token_digest(new_token).upper()]}
    )
    assert settings.internal_caller(GATEWAY_TOKEN) == "gateway"
    assert settings.internal_caller(new_token) == "gateway"
    assert settings.internal_caller(FULFILMENT_TOKEN) is None
    with pytest.raises(ValidationError, match="are not SHA-256 in hex"):
        StockSettings(internal_callers={"gateway": []})


def test_the_role_bootstrap_refuses_weak_database_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    for schema in SCHEMAS:
        monkeypatch.setenv(f"{schema.upper()}_DB_PASSWORD", STRONG)
    monkeypatch.setenv("STOCK_DB_PASSWORD", "fulfil")

    assert db_roles_main() == 2
    assert capsys.readouterr().err == (
        "STOCK_DB_PASSWORD is shorter than 32 characters"
        " (only ENVIRONMENT=development allows this)\n"
    )
    monkeypatch.delenv("ORDERS_DB_PASSWORD")
    assert db_roles_main() == 2
    assert "ORDERS_DB_PASSWORD" in capsys.readouterr().err
