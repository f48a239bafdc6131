"""The README's five-minute walkthrough with the Python client (`make up` first):

export FULFIL_URL=http://127.0.0.1:8000 FULFIL_API_KEY=$(cat .local/demo_api_key)
.venv/bin/python clients/python/examples/walkthrough.py
"""

from fulfil_client import Client, Conflict, NotFound

with Client() as fulfil:  # FULFIL_URL and FULFIL_API_KEY; retries and Idempotency-Keys built in
    # A product, a warehouse and 50 units of stock there
    fulfil.products.create({"sku": "MUG-01", "name": "Blue mug", "min_level": 5})
    fulfil.locations.create({"location_id": "warehouse-1", "name": "Main warehouse"})
    fulfil.stock.create_record({"sku": "MUG-01", "location_id": "warehouse-1", "quantity": 50})

    # Tell us about sales, but of status changes only those to shipped or canceled
    endpoint = fulfil.webhooks.endpoints.create(
        {
            "url": "http://127.0.0.1:9999/hooks",
            "event_types": ["sale.*"],
            "filters": {"sale.status_changed": {"status": ["shipped", "canceled"]}},
        }
    )
    print("webhook secret, shown once:", endpoint.secret[:10] + "...")

    # A sale: the call waits for the reservation; the sale comes back "pending"
    sale = fulfil.sales.create(
        {
            "sale_id": "SO-1001",
            "shop": {"channel": "web", "shop_name": "Mugs & Co"},
            "location_id": "warehouse-1",
            "lines": [{"sku": "MUG-01", "quantity": 2}],
            "customer": {"name": "Ada Lovelace"},
            "shipping_address": {"city": "London"},
        }
    )
    print(sale.sale_id, sale.status)  # SO-1001 pending

    # Stock now shows 2 reserved, 48 available
    for record in fulfil.stock.records(sku="MUG-01"):
        print(record.location_id, record.reserved, record.available)  # warehouse-1 2 48

    # More than there is: created "backordered", with the issue named
    short = fulfil.sales.create(
        {
            "sale_id": "SO-1002",
            "shop": {"channel": "web", "shop_name": "Mugs & Co"},
            "location_id": "warehouse-1",
            "lines": [{"sku": "MUG-01", "quantity": 60}],
        }
    )
    print(short.status, [(i.sku, i.requested, i.available) for i in short.issues or []])
    # backordered [('MUG-01', 60, 48)]

    # Cancel it only if nobody changed it since we read it: If-Match from its version
    try:
        fulfil.sales.cancel("SO-1002", "customer_request", version=short.version - 1)
    except Conflict as stale:
        print(stale.status, stale.code)  # 409 conflict
    print(fulfil.sales.cancel("SO-1002", "customer_request", version=short.version).status)

    # Hand SO-1001 to shipping, then report it shipped
    [fulfillment] = fulfil.fulfillment.init_shipping({"sale_ids": ["SO-1001"]}).fulfillments
    print(fulfillment.status, fulfillment.tracking_number)  # waiting_for_picking FP...
    label = fulfil.fulfillment.label(str(fulfillment.id))
    print(label[:5])  # b'%PDF-': a 4x6" label
    fulfil.fulfillment.set_statuses({"updates": [{"id": str(fulfillment.id), "status": "shipped"}]})

    # The sale with its history; every page of the stock ledger
    print([entry.to_status for entry in fulfil.sales.get("SO-1001").status_history or []])
    print([m.reason for m in fulfil.stock.movements(sku="MUG-01")])

    # Errors are typed, with the platform's code
    try:
        fulfil.sales.get("nope")
    except NotFound as missing:
        print(missing.status, missing.code, missing.detail)  # 404 no_content No sale ...
