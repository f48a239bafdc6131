"""SQL for the stock schema, one module per aggregate: the catalogue (products, locations),
stock records with their ledger, reservations with the backorder queue, the outbox, and the
inbox of the events that need it."""

from stock.store import catalogue, inbound, inbox, outbox, records, reservations

__all__ = ["catalogue", "inbound", "inbox", "outbox", "records", "reservations"]
