from typing import ClassVar

from pydantic import Field

from fulfilkit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        *ServiceSettings.SECRET_FIELDS,
        "admin_token",
        "internal_token",
    )
    ACCEPTED_CALLERS: ClassVar[frozenset[str]] = frozenset()  # no service calls the gateway

    # Empty means the admin API refuses everyone (allowed in development only).
    admin_token: str = ""
    # The gateway's own credential, sent with every call it forwards to a service.
    internal_token: str = ""
    orders_url: str = "http://127.0.0.1:8001"
    stock_url: str = "http://127.0.0.1:8002"
    fulfilment_url: str = "http://127.0.0.1:8003"
    webhooks_url: str = "http://127.0.0.1:8004"
    rate_limit_per_second: float = Field(default=200, gt=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    # Per client address: requests without a valid API key (missing, unknown, revoked).
    unauthenticated_rate_limit_per_second: float = Field(default=5, gt=0)
    unauthenticated_rate_limit_burst: int = Field(default=50, ge=1)
    # Per client address: failed admin-token attempts.
    admin_failures_per_minute: float = Field(default=10, gt=0)
    admin_failures_burst: int = Field(default=10, ge=1)
    admin_max_body_bytes: int = Field(default=16_384, ge=1)
    upstream_timeout_seconds: float = Field(default=30, gt=0)
    # GET /api/v1/admin/overview: how long it waits for each service (asked at once).
    overview_timeout_seconds: float = Field(default=3, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1)
    api_key_cache_seconds: float = Field(default=5, ge=0)
    api_key_cache_size: int = Field(default=100_000, ge=1)
    api_key_negative_cache_size: int = Field(default=10_000, ge=1)
    # How long an OAuth2 access token from POST /api/v1/oauth/token works (`expires_in`).
    oauth_token_seconds: int = Field(default=3600, ge=1, le=86_400)
    idempotency_ttl_hours: float = Field(default=24, gt=0)
    # A retry of a request still in progress after this long is forwarded again (the service
    # keys the effect with the Idempotency-Key and replays or waits for the first attempt).
    idempotency_forward_again_seconds: float = Field(default=3, ge=0)
    # scheme://host[:port] of the public API for absolute links; empty: links stay relative.
    public_base_url: str = Field(default="", pattern=r"^(https?://[^/\s?#]+)?$")
    max_request_body_bytes: int = Field(default=1_048_576, ge=1)
    openapi_cache_seconds: float = Field(default=60, ge=0)
    # The console (/console): a session ends after this long without a request, and after
    # this long in any case; each of its calls to a service gets this long to answer; a
    # session's live updates (a sale moving, a delivery succeeding) are polled at most this often.
    console_idle_minutes: float = Field(default=30, gt=0)
    console_session_hours: float = Field(default=12, gt=0)
    console_call_timeout_seconds: float = Field(default=10, gt=0)
    console_polls_per_second: float = Field(default=4, gt=0)
    console_polls_burst: int = Field(default=40, ge=1)
