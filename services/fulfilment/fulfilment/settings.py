from pydantic import Field

from fulfilkit.settings import ServiceSettings


class FulfilmentSettings(ServiceSettings):
    orders_url: str = "http://127.0.0.1:8001"
    orders_timeout_seconds: float = Field(default=10.0, gt=0)
    default_shipping_provider: str = "fulfil-post"
    # JSON object: {"location:warehouse-1": "fulfil-post", "channel:amazon": "..."}
    shipping_provider_rules: dict[str, str] = Field(default_factory=dict)
