from pathlib import Path

from fulfilkit.service import ServiceSpec, create_service
from stock.api import router
from stock.handlers import CONSUMERS
from stock.settings import StockSettings

app = create_service(
    ServiceSpec(
        name="stock",
        settings=StockSettings(),
        migrations=Path(__file__).with_name("migrations"),
        routers=[router],
        consumers=CONSUMERS,
    ),
    title="Fulfil stock service",
)
