from pydantic import Field

from fulfilkit.settings import ServiceSettings


class StockSettings(ServiceSettings):
    backorder_poll_interval_seconds: float = Field(default=5.0, gt=0)
    backorder_sweep_interval_seconds: float = Field(default=30.0, gt=0)
