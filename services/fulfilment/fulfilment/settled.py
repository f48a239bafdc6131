"""What this process has itself committed about fulfillments, so that the consumer can skip
a sale's event whose work is known done, with no transaction and no inbox row.

The requests do the work first: shipping init creates a claimed sale's fulfillments, marking
them shipped moves them. The sale's own events (`in_fulfillment`, `shipped`) come back
through Kafka a moment later, and `follow_sales` finds nothing left to do but still writes an
inbox row and reads the fulfillments. This memory holds, for a bounded number of the latest
fulfillments, that they exist and whether they are shipped, as this process committed them.

It is safe to skip on what it holds because both facts only ever stay true: a fulfillment is
never deleted, and a shipped one never moves back. A fact it does not hold (another process
did the work, the process restarted, the entry was evicted) means the event goes through the
consumer as before; so does every cancellation.
"""

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from fulfilkit import contracts as c
from fulfilkit.received import Event
from fulfilment.domain import Fulfillment, parts_of

# About a minute of fulfillments at the rates measured on a 2-core machine; a few MB.
DEFAULT_SIZE = 50_000
SHIPPED = frozenset({"shipped", "delivered"})

Key = tuple[UUID, UUID, str]  # tenant, sale, location


class Settled:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._shipped: OrderedDict[Key, bool] = OrderedDict()  # exists -> shipped or not

    def committed(self, fulfillments: Iterable[Fulfillment]) -> None:
        """These fulfillments are committed as they are: call only once their transaction has."""
        for f in fulfillments:
            key = (f.tenant_id, f.sale, f.location)
            shipped = f.status in SHIPPED or self._shipped.get(key, False)
            self._shipped[key] = shipped
            self._shipped.move_to_end(key)
        while len(self._shipped) > self._size:
            self._shipped.popitem(last=False)

    def done(self, event: Event[Any]) -> bool:
        """Whether `follow_sales` would find nothing to do for this event: every part of a
        claimed sale has its fulfillment, or every part of a shipped sale is shipped."""
        if event.type != c.SALE_STATUS_CHANGED or event.data.status not in (
            "in_fulfillment",
            "shipped",
        ):
            return False
        sale = event.data
        try:
            parts = parts_of(sale.location_id, sale.reservation)
        except Exception:  # nothing to ship, or a reservation it cannot read:
            return False  # the consumer decides, as without this memory
        keys = [(event.tenantid, sale.id, part.location_id) for part in parts]
        if sale.status == "in_fulfillment":
            return all(key in self._shipped for key in keys)
        return all(self._shipped.get(key, False) for key in keys)
