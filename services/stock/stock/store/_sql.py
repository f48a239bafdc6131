"""What the store modules share: the schema and the shape of a record as rules read it."""

from collections.abc import Sequence
from typing import Any

S = "stock"
RECORD_COLUMNS = (
    "r.id, r.tenant_id, r.location_id, r.sku, r.quantity, r.reserved, r.version,"
    " p.min_level, r.low, p.is_bulky, r.updated_at, p.out_of_stock_threshold AS threshold,"
    " p.infinite"
)
RECORD_FROM = f"{S}.stock_records r JOIN {S}.products p USING (tenant_id, sku)"


def columns(keys: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Tuples as `width` arrays, for `unnest`."""
    return [[k[i] for k in keys] for i in range(width)]
