from pydantic import Field, model_validator

from fulfilkit.settings import ServiceSettings

DEV_ADMIN_TOKEN = "dev-admin-token"


class GatewaySettings(ServiceSettings):
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, min_length=8)
    orders_url: str = "http://127.0.0.1:8001"
    stock_url: str = "http://127.0.0.1:8002"
    fulfilment_url: str = "http://127.0.0.1:8003"
    webhooks_url: str = "http://127.0.0.1:8004"
    rate_limit_per_second: float = Field(default=200, gt=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    upstream_timeout_seconds: float = Field(default=30, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1)
    api_key_cache_seconds: float = Field(default=5, ge=0)
    # A retry of a request still in progress after this long is forwarded again (the service
    # keys the effect with the Idempotency-Key and replays or waits for the first attempt).
    idempotency_forward_again_seconds: float = Field(default=3, ge=0)
    # scheme://host[:port] of the public API for absolute links; empty: links stay relative.
    public_base_url: str = Field(default="", pattern=r"^(https?://[^/\s?#]+)?$")
    max_request_body_bytes: int = Field(default=1_048_576, ge=1)
    openapi_cache_seconds: float = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _admin_token_set_outside_development(self) -> "GatewaySettings":
        if self.environment != "development" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("ADMIN_TOKEN must be set outside development")
        return self
