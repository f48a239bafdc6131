"""The stock API: the catalogue (products, locations) and stock levels, one router each,
and the operator's internal routes."""

from stock.api.catalogue import router as catalogue
from stock.api.inbound import router as inbound
from stock.api.levels import router as levels
from stock.api.operator import router as operator

ROUTERS = [catalogue, levels, inbound, operator]
