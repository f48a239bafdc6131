from typing import ClassVar

from pydantic import Field

from fulfilkit.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    ACCEPTED_CALLERS: ClassVar[frozenset[str]] = frozenset({"gateway", "fulfilment"})

    sale_create_wait_seconds: float = Field(default=5.0, ge=0)
