from pathlib import Path

from fastapi import FastAPI

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.metrics import GaugeQuery
from fulfilkit.service import ServiceDefinition, create_service
from stock.api import ROUTERS
from stock.backorders import run_backorder_worker
from stock.handlers import CONSUMERS
from stock.settings import StockSettings

GAUGES = [
    GaugeQuery(
        "fulfil_stock_backorder_queue_sales",
        "Sales waiting in the backorder queue for stock",
        "SELECT count(*) FROM stock.backorders",
    ),
]


def create_app(settings: StockSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="stock",
            settings=settings or StockSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=ROUTERS,
            consumers=CONSUMERS,
            background=[run_backorder_worker, keep_keys_bounded],
            gauges=GAUGES,
        ),
        title="Fulfil stock service",
    )
