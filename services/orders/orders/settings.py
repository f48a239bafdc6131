from pydantic import Field

from fulfilkit.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    sale_create_wait_seconds: float = Field(default=5.0, ge=0)
