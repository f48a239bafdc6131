"""The stock API: the catalogue (products, locations) and stock levels, one router each."""

from stock.api.catalogue import router as catalogue
from stock.api.inbound import router as inbound
from stock.api.levels import router as levels

ROUTERS = [catalogue, levels, inbound]
