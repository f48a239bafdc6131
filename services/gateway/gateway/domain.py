"""The gateway's rules, without I/O: API keys and scopes, which service serves a path, and
when a request with an Idempotency-Key is forwarded, replayed or refused."""

import base64
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, quote, unquote_plus
from uuid import UUID, uuid4

from fulfilkit.errors import Conflict

API_PREFIX = "/api/v1"
API_PREFIX_SLASH = API_PREFIX + "/"
# The first segments under /api/v1 the gateway answers itself, never forwarded.
GATEWAY_SEGMENTS = frozenset({"admin", "oauth", "api-keys"})
GATEWAY_PREFIXES = tuple(API_PREFIX_SLASH + segment for segment in sorted(GATEWAY_SEGMENTS))
ADMIN_PREFIX = API_PREFIX + "/admin"
STOCK_OPERATOR_PREFIX = "/internal/stock"  # stock's routes for the admin API
OVERVIEW_PATH = "/internal/overview"  # every service's, for GET /api/v1/admin/overview
OVERVIEW_SERVICES = ("orders", "stock", "fulfilment", "webhooks")

# --- API versions ------------------------------------------------------------------------------

# The headers that name a version, as integrators of the reference products send them: the
# platform's own `X-API-Version: v1`, `Accept-Version: 1` and `X-OAKRA-API-VERSION: v1`. Each
# takes `1` or `v1` in any case; when several are sent they must name the same version.
HEADER_NAMES = {  # lower case as read -> as written in the docs and in problems
    "x-api-version": "X-API-Version",
    "accept-version": "Accept-Version",
    "x-oakra-api-version": "X-OAKRA-API-VERSION",
}
VERSION_HEADERS = tuple(HEADER_NAMES)
SUPPORTED_VERSIONS = ("v1",)  # oldest first
CURRENT_VERSION = SUPPORTED_VERSIONS[-1]  # what a request naming none gets
VERSION_RESPONSE_HEADER = "api-version"
_VERSION_VALUE = re.compile(r"[vV]?([0-9]{1,4})")
_SPELLINGS = {f"{prefix}{v[1:]}": v for v in SUPPORTED_VERSIONS for prefix in ("", "v", "V")}


class UnsupportedVersion(ValueError):
    """A version header names no version this platform serves, or two name different ones."""


def version_named(value: str) -> str | None:
    """`v1` for `1`, `v1`, `V1` (spaces around ignored); None when the value names none we
    serve."""
    if (known := _SPELLINGS.get(value)) is not None:
        return known
    match = _VERSION_VALUE.fullmatch(value.strip())
    name = f"v{int(match.group(1))}" if match else None
    return name if name in SUPPORTED_VERSIONS else None


def requested_version(sent: Iterable[tuple[str, str]]) -> str:
    """The version a request asks for from its (lower-case name, value) headers: the current
    one when no version header is sent; UnsupportedVersion when one names a version that does
    not exist, or two name different versions."""
    chosen: tuple[str, str] | None = None  # (header, version) of the first version header
    for name, value in sent:
        if name not in VERSION_HEADERS:
            continue
        version = version_named(value)
        if version is None:
            raise UnsupportedVersion(
                f"Unknown API version {value!r} in {HEADER_NAMES[name]}; supported: "
                f"{', '.join(SUPPORTED_VERSIONS)} (`Accept-Version: 1`, `X-API-Version: v1`"
                " or `X-OAKRA-API-VERSION: v1`; none means the current version,"
                f" {CURRENT_VERSION})."
            )
        if chosen is None:
            chosen = (name, version)
        elif chosen[1] != version:
            raise UnsupportedVersion(
                "The version headers name different versions"
                f" ({HEADER_NAMES[chosen[0]]}: {chosen[1]}, {HEADER_NAMES[name]}: {version})."
            )
    return CURRENT_VERSION if chosen is None else chosen[1]


def served_version(sent: Iterable[tuple[str, str]]) -> str:
    """The version an answer says it speaks (`API-Version`): the one asked for, or the current
    one when none or an unsupported one was asked for (the refusal speaks the current one)."""
    try:
        return requested_version(sent)
    except UnsupportedVersion:
        return CURRENT_VERSION


# --- tenants, API keys and scopes ------------------------------------------------------------

API_KEY_PREFIX = "fk_"
ACCESS_TOKEN_PREFIX = "fkt_"  # an OAuth2 access token: a bearer credential like a key
CLIENT_SECRET_PREFIX = "fks_"  # an OAuth2 client's secret: never a bearer credential
SHOWN_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
MAX_API_KEY_LENGTH = 128

ScopeName = Literal[
    "sales:read",
    "sales:write",
    "stock:read",
    "stock:write",
    "fulfillment:read",
    "fulfillment:write",
    "webhooks:read",
    "webhooks:write",
    "admin",
]
SCOPES: tuple[str, ...] = get_args(ScopeName)
# What a tenant's first key gets unless the admin asks for other scopes.
DEFAULT_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "admin")
READ_METHODS = frozenset({"GET", "HEAD"})
ADMIN_ONLY_PATHS = ("/api/v1/stock/integrity",)


@dataclass(frozen=True)
class Tenant:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TenantSummary:
    """A tenant with how many of its API keys are active and how many revoked."""

    tenant: Tenant
    active_keys: int
    revoked_keys: int


@dataclass(frozen=True)
class NewApiKey:
    """A key as it is issued: the secret exists only here, the database keeps its hash."""

    id: UUID
    secret: str
    key_hash: bytes
    prefix: str
    scopes: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class ApiKey:
    id: UUID
    tenant_id: UUID
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    name: str | None = None


@dataclass(frozen=True)
class IssuedKey:
    """A key just stored, with its secret: shown to the caller this once."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class TenantWithKey:
    tenant: Tenant
    first_key: IssuedKey


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an API key, or an OAuth2 client by one of its access tokens (then
    `key_id` is the client's id, so that its tokens share one rate limit and one revocation)."""

    key_id: UUID
    tenant_id: UUID
    scopes: frozenset[str]
    kind: Literal["key", "client"] = "key"

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.key_id}"


def required_scope(area: str, method: str, path: str = "") -> str:
    """`area` is a scope family such as `sales`; reading needs `:read`, anything else `:write`.

    Operator endpoints under `ADMIN_ONLY_PATHS` need `admin` whatever the method.
    """
    if any(path == p or path.startswith(p + "/") for p in ADMIN_ONLY_PATHS):
        return "admin"
    return f"{area}:{'read' if method.upper() in READ_METHODS else 'write'}"


def hash_api_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_api_key(scopes: Iterable[str], name: str | None = None) -> NewApiKey:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(
        id=uuid4(),
        secret=secret,
        key_hash=hash_api_key(secret),
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        scopes=tuple(dict.fromkeys(scopes)),
        name=name,
    )


def may_be_api_key(token: str) -> bool:
    """False for tokens no key or access token can be (so no lookup is spent on them)."""
    return token.startswith((API_KEY_PREFIX, ACCESS_TOKEN_PREFIX)) and (
        len(token) <= MAX_API_KEY_LENGTH
    )


def is_access_token(token: str) -> bool:
    return token.startswith(ACCESS_TOKEN_PREFIX)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_admin(authorization: str | None, admin_token: str) -> bool:
    token = bearer_token(authorization)
    return token is not None and hmac.compare_digest(token.encode(), admin_token.encode())


# --- OAuth2 client credentials (RFC 6749 sections 2.3.1, 4.4 and 5) -------------------------

TOKEN_PATH = API_PREFIX + "/oauth/token"
API_KEYS_PATH = API_PREFIX + "/api-keys"
CLIENTS_PATH = API_PREFIX + "/oauth/clients"
SELF_SERVICE_PREFIXES = (API_KEYS_PATH, CLIENTS_PATH)
MAX_CLIENT_CREDENTIAL_LENGTH = 200
SELF_SERVICE_SCOPE = "admin"


@dataclass(frozen=True)
class NewSecret:
    """A secret as it is issued: the secret exists only here, the database keeps its hash."""

    secret: str
    hash: bytes
    prefix: str


def new_secret(prefix: str) -> NewSecret:
    secret = prefix + secrets.token_urlsafe(32)
    return NewSecret(secret, hash_api_key(secret), secret[: len(prefix) + 8])


@dataclass(frozen=True)
class OAuthClient:
    id: UUID  # also its `client_id`
    tenant_id: UUID
    name: str
    secret_prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedClient:
    """A client just stored, with its secret: shown to the caller this once."""

    client: OAuthClient
    secret: str


@dataclass(frozen=True)
class ClientCredentials:
    """A client that authenticated: its record (active, secret checked)."""

    client: OAuthClient
    secret_hash: bytes


@dataclass(frozen=True)
class AccessToken:
    token: str
    scopes: tuple[str, ...]
    expires_in: int  # seconds


class OAuthError(Exception):
    """An error of the token endpoint, answered as RFC 6749 section 5.2 says: JSON with
    `error` and `error_description`; `invalid_client` is 401 with a `WWW-Authenticate`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def invalid_client(description: str = "Unknown client, or wrong secret.") -> OAuthError:
    return OAuthError("invalid_client", description, 401)


@dataclass(frozen=True)
class TokenRequest:
    client_id: str
    client_secret: str
    scope: str | None  # as asked for: space-delimited, None when absent


def parse_token_request(
    content_type: str | None, body: bytes, authorization: str | None
) -> TokenRequest:
    """The client credentials grant's request: form fields in the body (parameters without a
    value count as absent, a repeated one is refused), the client authenticated by HTTP Basic
    or by `client_id` and `client_secret` fields, never both."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "Send the parameters as application/x-www-form-urlencoded."
        )
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "The body is not a valid form.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError("invalid_request", f"The {name!r} parameter is repeated.")
        params[name] = value
    params = {name: value for name, value in params.items() if value}
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise OAuthError("invalid_request", "The grant_type parameter is missing.")
    basic = basic_credentials(authorization)
    in_body = "client_id" in params or "client_secret" in params
    if basic is not None and in_body:
        raise OAuthError(
            "invalid_request",
            "Authenticate the client one way: HTTP Basic or client_id and client_secret.",
        )
    client_id, client_secret = basic or (
        params.get("client_id", ""),
        params.get("client_secret", ""),
    )
    if not client_id or not client_secret:
        raise invalid_client("Authenticate the client by HTTP Basic or client_id and secret.")
    if grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", "Only the client_credentials grant is supported."
        )
    return TokenRequest(client_id, client_secret, params.get("scope"))


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) of an HTTP Basic `Authorization`, each form-urlencoded
    before the base64 (RFC 6749 section 2.3.1); None without Basic; invalid_client when
    malformed."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise invalid_client("The Basic credentials are not valid base64 of UTF-8.") from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise invalid_client("The Basic credentials lack the ':' between id and secret.")
    return unquote_plus(client_id), unquote_plus(client_secret)


def granted_scopes(requested: str | None, allowed: Iterable[str]) -> tuple[str, ...]:
    """The token's scopes: the client's, or the part of them asked for; invalid_scope when
    asking for one the client lacks."""
    allowed = tuple(allowed)
    if requested is None:
        return allowed
    asked = tuple(dict.fromkeys(requested.split()))
    if not asked:
        return allowed
    if missing := [s for s in asked if s not in allowed]:
        raise OAuthError(
            "invalid_scope",
            f"This client may not have {' '.join(missing)!r}; it may have {' '.join(allowed)!r}.",
        )
    return asked


def client_id_of(client_id: str) -> UUID | None:
    """The client's id, or None when `client_id` cannot be one (no lookup is spent)."""
    if len(client_id) > MAX_CLIENT_CREDENTIAL_LENGTH:
        return None
    try:
        return UUID(client_id)
    except ValueError:
        return None


def secret_matches(secret: str, secret_hash: bytes) -> bool:
    return hmac.compare_digest(hash_api_key(secret), secret_hash)


# --- which service serves a path -------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    area: str  # the scope family: `sales` needs sales:read / sales:write
    service: str  # the upstream that serves it


ROUTES: dict[str, Route] = {
    "sales": Route("sales", "orders"),
    "returns": Route("sales", "orders"),  # a sale's returns: orders owns both
    "products": Route("stock", "stock"),
    "locations": Route("stock", "stock"),
    "stock": Route("stock", "stock"),
    "inbound-orders": Route("stock", "stock"),
    "fulfillment": Route("fulfillment", "fulfilment"),
    "webhooks": Route("webhooks", "webhooks"),
}


# The services with consumers, whose dead letters the admin API reaches.
DeadLetterService = Literal["orders", "stock", "fulfilment", "webhooks"]


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def is_self_service_path(path: str) -> bool:
    """A tenant's own API keys and OAuth2 clients, managed with an `admin`-scoped key."""
    return any(path == p or path.startswith(p + "/") for p in SELF_SERVICE_PREFIXES)


def is_forwarded(path: str) -> bool:
    """Paths under /api/v1 belong to the services, except the gateway's own: the admin API,
    the OAuth2 endpoints and the tenant's keys. Every request asks: the common answer costs
    two `startswith`."""
    if not path.startswith(API_PREFIX_SLASH):
        return False
    if not path.startswith(GATEWAY_PREFIXES):
        return True
    return path[len(API_PREFIX_SLASH) :].partition("/")[0] not in GATEWAY_SEGMENTS


def route_for(path: str) -> Route | None:
    """The route of `/api/v1/<segment>/...` by its first segment; None when nobody serves it."""
    if not path.startswith(API_PREFIX + "/"):
        return None
    segment = path[len(API_PREFIX) + 1 :].split("/", 1)[0]
    return ROUTES.get(segment)


def route_template(path: str) -> str:
    """A bounded name for a forwarded path (its span's): `/api/v1/sales`, or
    `/api/v1/sales/{path}` for anything under it; the service's own span has the template."""
    segment, _, rest = path[len(API_PREFIX) + 1 :].rstrip("/").partition("/")
    return f"{API_PREFIX}/{segment}/{{path}}" if rest else f"{API_PREFIX}/{segment}"


def upstream_path(raw_path: bytes | None, path: str) -> str:
    """The path to forward, percent-encoded as the client sent it, without a trailing slash.

    `raw_path` keeps escapes such as `%2F` inside a SKU that the decoded `path` has lost.
    """
    target = raw_path.decode("utf-8", "replace") if raw_path else path
    return quote(target, safe="/:@!$&'()*+,;=-._~%").rstrip("/") or "/"


_ORIGIN_OF_API_URL = re.compile(r"https?://[^/\s<>\"]+(?=/api/v1(?:[/?#>;\s\"]|$))")


def with_public_origin(value: str, public_base_url: str) -> str:
    """Points absolute API URLs in a `Link` or `Location` value at the gateway: services build
    them from their own address, which is neither public nor reachable from outside.

    The origin is the configured public base URL, or none (a relative link): never the
    client's `Host`, which anyone can set. A function as replacement, so that nothing in it
    is read as a template.
    """
    origin = public_base_url.rstrip("/")
    return _ORIGIN_OF_API_URL.sub(lambda _: origin, value)


@dataclass(frozen=True)
class UpstreamCall:
    service: str
    method: str
    path: str  # percent-encoded
    query: str
    headers: Mapping[str, str]  # the client's headers the service needs, lower-case names
    body: bytes
    tenant_id: UUID | None  # None: an operator's call through the admin API, for no tenant
    actor: str


# --- rate limits -------------------------------------------------------------------------------


def client_address(scope: Mapping[str, Any]) -> str:
    """The key of the ASGI client's address: the IPv4 address, or the IPv6 /64 it is in (the
    block one host usually has)."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


def retry_after(wait_seconds: float) -> str:
    """The `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))


# --- Idempotency-Key ---------------------------------------------------------------------------

REPLAYED_HEADER = "idempotent-replayed"


@dataclass(frozen=True)
class IdempotencyPolicy:
    ttl: timedelta
    forward_again_after: timedelta  # a retry of a request in progress this long goes through


@dataclass(frozen=True)
class RequestFingerprint:
    """What makes two requests "the same" for an Idempotency-Key."""

    method: str
    path: str
    body_sha256: bytes

    @classmethod
    def of(cls, method: str, path: str, query: str, body: bytes) -> "RequestFingerprint":
        target = f"{path}?{query}" if query else path
        return cls(method.upper(), target, hashlib.sha256(body).digest())


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: RequestFingerprint
    response: StoredResponse | None  # None while in progress, or when the answer is not kept


class InProgress(Conflict):
    """The first request with this key has not been answered yet: retry in a moment."""

    retry_after_seconds = 1


def idempotency_key_of(call: UpstreamCall) -> str | None:
    """The key of a POST that carries one; other methods are idempotent by themselves."""
    return call.headers.get("idempotency-key") if call.method == "POST" else None


def replay(record: IdempotencyRecord, fingerprint: RequestFingerprint) -> StoredResponse:
    """The stored answer to a retried request; Conflict when the retry is not the same
    request, InProgress while the first one has no answer yet."""
    if record.fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request"
            " (method, path or body); use a new key for a new request."
        )
    if record.response is None:
        raise InProgress(
            "A request with this Idempotency-Key is still in progress; retry after it completes."
        )
    first = record.response
    return StoredResponse(first.status_code, {**first.headers, REPLAYED_HEADER: "true"}, first.body)


class Keep(Enum):
    """What the record of a forwarded request keeps of the service's answer."""

    NOTHING = "nothing"  # the claim goes: a retry is a new request (5xx: nothing happened)
    NOT_THE_ANSWER = "not the answer"  # a retry is forwarded again and the service replays
    ANSWER = "answer"  # a retry gets this answer from the gateway


def what_to_keep(response: StoredResponse) -> Keep:
    """Answers of 500 and above are not kept; answers the service marks
    `Cache-Control: no-store` (they hold a secret) are not stored here."""
    if response.status_code >= 500:
        return Keep.NOTHING
    if "no-store" in response.headers.get("cache-control", "").lower():
        return Keep.NOT_THE_ANSWER
    return Keep.ANSWER
