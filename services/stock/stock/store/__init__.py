"""SQL for the stock schema, one module per aggregate: the catalogue (products, locations),
stock records with their ledger, and reservations with the backorder queue."""

from stock.store import catalogue, inbound, records, reservations

__all__ = ["catalogue", "inbound", "records", "reservations"]
