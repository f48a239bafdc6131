from typing import ClassVar

from pydantic import Field

from fulfilkit.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    ACCEPTED_CALLERS: ClassVar[frozenset[str]] = frozenset({"gateway", "fulfilment"})

    sale_create_wait_seconds: float = Field(default=5.0, ge=0)
    # How long a create naming a SKU that orders' copy of the catalogue lacks waits for it
    # (a product created a moment ago) before answering 422.
    sale_catalogue_wait_seconds: float = Field(default=2.0, ge=0, le=10)
