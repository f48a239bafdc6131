"""SQL for the stock schema, one module per aggregate: the catalogue (products, locations),
stock records with their ledger, reservations with the backorder queue, and the outbox."""

from stock.store import catalogue, inbound, outbox, records, reservations

__all__ = ["catalogue", "inbound", "outbox", "records", "reservations"]
