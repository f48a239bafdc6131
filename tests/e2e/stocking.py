"""Puts a product with stock at a location for a tenant, through the public API."""

from tests.support import Client, ref


async def stocked_product(client: Client, quantity: int) -> tuple[str, str, dict]:
    sku, location = ref("SKU"), ref("wh")
    product = await client.post("/products", {"sku": sku, "name": "Mug", "min_level": 1})
    assert product.status == 201, product
    loc = await client.post("/locations", {"location_id": location, "name": "Main warehouse"})
    assert loc.status == 201, loc
    record = await client.post(
        "/stock/stock-records", {"sku": sku, "location_id": location, "quantity": quantity}
    )
    assert record.status == 201, record
    return sku, location, record.body


def sale_body(sale_id: str, location: str, *lines: tuple[str, int]) -> dict:
    return {
        "sale_id": sale_id,
        "shop": {"channel": "web", "shop_name": "Test shop"},
        "location_id": location,
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
        "customer": {"name": "Ada"},
        "shipping_address": {"city": "Oslo", "country": "NO"},
    }
