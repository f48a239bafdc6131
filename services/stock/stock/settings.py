from pydantic import Field

from fulfilkit.settings import ServiceSettings


class StockSettings(ServiceSettings):
    # A reservation writes two events (stock.changed and stock.reserved): larger relay rounds
    # make fewer, larger produce requests (Kafka's CPU per reservation 0.06-0.08 -> 0.04 ms,
    # docs/benchmarks.md)
    outbox_batch_size: int = Field(default=2000, ge=1)
    backorder_poll_interval_seconds: float = Field(default=5.0, gt=0)
    backorder_sweep_interval_seconds: float = Field(default=30.0, gt=0)
