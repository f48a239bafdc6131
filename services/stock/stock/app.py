from pathlib import Path

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.service import ServiceSpec, create_service
from stock.api import router as catalogue
from stock.api_stock import router as stock_levels
from stock.backorders import run_backorder_worker
from stock.handlers import CONSUMERS
from stock.settings import StockSettings

app = create_service(
    ServiceSpec(
        name="stock",
        settings=StockSettings(),
        migrations=Path(__file__).with_name("migrations"),
        routers=[catalogue, stock_levels],
        consumers=CONSUMERS,
        background=[run_backorder_worker, keep_keys_bounded],
    ),
    title="Fulfil stock service",
)
