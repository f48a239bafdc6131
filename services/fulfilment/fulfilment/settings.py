from typing import ClassVar

from pydantic import Field, model_validator

from fulfilkit.settings import ServiceSettings
from fulfilment.providers import PROVIDERS


class FulfilmentSettings(ServiceSettings):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (*ServiceSettings.SECRET_FIELDS, "internal_token")

    # fulfilment's own credential, sent when it claims and ships sales on orders
    internal_token: str = ""
    orders_url: str = "http://127.0.0.1:8001"
    consumer_fetch_max_wait_ms: int = Field(default=25, ge=0)
    consumer_fetch_min_bytes: int = Field(default=1024 * 1024, ge=1)
    orders_timeout_seconds: float = Field(default=10.0, gt=0)
    default_shipping_provider: str = "fulfil-post"
    # JSON object: {"location:warehouse-1": "fulfil-post", "channel:amazon": "..."}
    shipping_provider_rules: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _providers_exist(self) -> "FulfilmentSettings":
        named = {self.default_shipping_provider, *self.shipping_provider_rules.values()}
        unknown = named - set(PROVIDERS)
        if unknown:
            raise ValueError(
                f"unknown shipping providers {sorted(unknown)}; known: {sorted(PROVIDERS)}"
            )
        bad_keys = [
            k for k in self.shipping_provider_rules if not k.startswith(("location:", "channel:"))
        ]
        if bad_keys:
            raise ValueError(f"shipping rules must start with location: or channel: {bad_keys}")
        return self
