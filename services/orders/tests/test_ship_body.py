"""The body of orders' internal shipment: whole sales or parts of sales, one of the two."""

import pytest
from pydantic import ValidationError

from orders.schemas import ShipIn


def test_a_shipment_names_whole_sales_or_parts_of_sales():
    assert ShipIn.model_validate({"sale_ids": ["S-1"]}).sale_ids == ["S-1"]
    parts = ShipIn.model_validate({"parts": [{"sale_id": "S-1", "location_id": "wh-2"}]}).parts
    assert [(p.sale_id, p.location_id) for p in parts or []] == [("S-1", "wh-2")]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sale_ids": ["S-1"], "parts": [{"sale_id": "S-1", "location_id": "wh-2"}]},
        {"parts": []},
        {"parts": [{"sale_id": "S-1"}]},
        {"parts": [{"sale_id": "S-1", "location_id": "wh-2", "extra": 1}]},
        {"parts": [{"sale_id": "S-1", "location_id": "wh-2"}] * 101},
    ],
)
def test_anything_else_is_refused(body):
    with pytest.raises(ValidationError):
        ShipIn.model_validate(body)
