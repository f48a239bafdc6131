"""The token endpoint's request rules (RFC 6749 sections 2.3.1, 3.2, 4.4 and 5.2), pure."""

import base64
from urllib.parse import quote_plus, urlencode

import pytest

from gateway.domain import (
    ACCESS_TOKEN_PREFIX,
    API_KEY_PREFIX,
    CLIENT_SECRET_PREFIX,
    OAuthError,
    basic_credentials,
    client_id_of,
    granted_scopes,
    is_forwarded,
    may_be_api_key,
    new_secret,
    parse_token_request,
    secret_matches,
)

FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def error_of(*args: object) -> OAuthError:
    with pytest.raises(OAuthError) as raised:
        parse_token_request(*args)  # type: ignore[arg-type]
    return raised.value


def test_client_authenticated_by_basic_with_form_urlencoded_parts() -> None:
    request = parse_token_request(
        FORM + "; charset=UTF-8",
        form(grant_type="client_credentials", scope="sales:read"),
        basic("id:with colon", "s3cret+/="),
    )

    assert request.client_id == "id:with colon"
    assert request.client_secret == "s3cret+/="
    assert request.scope == "sales:read"


def test_client_authenticated_by_form_fields() -> None:
    request = parse_token_request(
        FORM, form(grant_type="client_credentials", client_id="c", client_secret="s"), None
    )

    assert (request.client_id, request.client_secret, request.scope) == ("c", "s", None)


def test_empty_parameters_count_as_absent() -> None:
    request = parse_token_request(
        FORM, b"grant_type=client_credentials&client_id=c&client_secret=s&scope=", None
    )

    assert request.scope is None


@pytest.mark.parametrize(
    ("content_type", "body", "authorization", "error", "status"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}', None, "invalid_request", 400),
        (None, form(grant_type="client_credentials"), None, "invalid_request", 400),
        (FORM, form(client_id="c", client_secret="s"), None, "invalid_request", 400),
        (FORM, b"grant_type=client_credentials&grant_type=password", None, "invalid_request", 400),
        (FORM, b"\xff\xfe", None, "invalid_request", 400),
        (
            FORM,
            form(grant_type="client_credentials", client_id="c", client_secret="s"),
            basic("c", "s"),
            "invalid_request",
            400,
        ),
        (FORM, form(grant_type="client_credentials"), None, "invalid_client", 401),
        (FORM, form(grant_type="client_credentials", client_id="c"), None, "invalid_client", 401),
        (FORM, form(grant_type="client_credentials"), "Basic !!!", "invalid_client", 401),
        (
            FORM,
            form(grant_type="client_credentials"),
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "invalid_client",
            401,
        ),
        (FORM, form(grant_type="password"), basic("c", "s"), "unsupported_grant_type", 400),
    ],
)
def test_malformed_requests_get_the_rfc_6749_error(
    content_type: str | None, body: bytes, authorization: str | None, error: str, status: int
) -> None:
    raised = error_of(content_type, body, authorization)

    assert (raised.error, raised.status) == (error, status)
    assert raised.description


def test_a_bearer_authorization_is_not_client_authentication() -> None:
    assert basic_credentials("Bearer fk_abc") is None
    assert basic_credentials(None) is None


def test_scopes_granted_are_the_clients_or_the_part_asked_for() -> None:
    allowed = ("sales:read", "sales:write", "stock:read")

    assert granted_scopes(None, allowed) == allowed
    assert granted_scopes("  ", allowed) == allowed
    assert granted_scopes("stock:read sales:read stock:read", allowed) == (
        "stock:read",
        "sales:read",
    )
    with pytest.raises(OAuthError) as raised:
        granted_scopes("sales:read admin", allowed)
    assert raised.value.error == "invalid_scope" and raised.value.status == 400
    assert "admin" in raised.value.description


def test_secrets_are_prefixed_hashed_and_compared_by_hash() -> None:
    secret = new_secret(CLIENT_SECRET_PREFIX)

    assert secret.secret.startswith(CLIENT_SECRET_PREFIX) and len(secret.secret) > 40
    assert secret.prefix == secret.secret[: len(CLIENT_SECRET_PREFIX) + 8]
    assert secret_matches(secret.secret, secret.hash)
    assert not secret_matches(secret.secret + "x", secret.hash)


def test_access_tokens_and_keys_are_bearer_credentials_client_secrets_are_not() -> None:
    assert may_be_api_key(API_KEY_PREFIX + "x" * 43)
    assert may_be_api_key(ACCESS_TOKEN_PREFIX + "x" * 43)
    assert not may_be_api_key(CLIENT_SECRET_PREFIX + "x" * 43)
    assert not may_be_api_key(ACCESS_TOKEN_PREFIX + "x" * 200)


def test_client_ids_are_uuids() -> None:
    assert client_id_of("not-a-uuid") is None
    assert client_id_of("0" * 300) is None
    assert str(client_id_of("6f1c2d3e-0000-4000-8000-000000000001")) == (
        "6f1c2d3e-0000-4000-8000-000000000001"
    )


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/api/v1/sales", True),
        ("/api/v1/oauth/token", False),
        ("/api/v1/oauth/token/", False),
        ("/api/v1/oauth/clients", False),
        ("/api/v1/oauth/clients/abc", False),
        ("/api/v1/api-keys", False),
        ("/api/v1/api-keys/abc", False),
        ("/api/v1/api-keysx", True),
        ("/api/v1/oauth", False),
        ("/api/v1", False),
        ("/api/v1x/sales", False),
        ("/api/v1/admin/tenants", False),
    ],
)
def test_the_gateways_own_paths_are_not_forwarded(path: str, forwarded: bool) -> None:
    assert is_forwarded(path) is forwarded
