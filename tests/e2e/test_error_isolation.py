"""One tenant's request that fails inside a service never costs another tenant's request.

A 500 used to close the service's keep-alive connection after the answer; the gateway's pool
handed that dead connection to the next request, whoever sent it, which then failed with 503
without being applied. The 500-prone request here is an `If-Match` beyond what a version can
be (a real input that fails in the database layer); should it ever be refused earlier with a
4xx, the normal requests must succeed all the same.
"""

import uuid

from deploy.local.services import Platform
from tests.e2e.stocking import stocked_product
from tests.support import Client, ref

ROUNDS = 20


async def test_interleaved_failing_and_normal_requests_of_two_tenants_all_normal_ones_succeed(
    tenant: Client,
    other_tenant: Client,
    platform: Platform,
):
    sku, _, _ = await stocked_product(tenant, quantity=1)
    _, _, record = await stocked_product(other_tenant, quantity=0)
    failing_ids = []
    for n in range(ROUNDS):
        request_id = f"prone-{uuid.uuid4().hex}"
        prone = await tenant.call(
            "PATCH",
            f"/products/{sku}",
            json={"name": f"Mug {n}"},
            headers={"If-Match": '"99999999999"', "X-Request-Id": request_id},
        )
        assert prone.status == 500 or 400 <= prone.status < 500, prone
        assert prone.headers["X-Request-Id"] == request_id
        assert prone.headers["Content-Type"] == "application/problem+json"
        if prone.status == 500:
            assert prone.body["code"] == "internal", prone
            failing_ids.append(request_id)

        normal = await other_tenant.post(
            "/stock/stock-records/change",
            {"stock_records": [{"id": record["id"], "quantity_change": 1}]},
            headers={"X-Request-Id": ref("normal")},
        )
        assert normal.status == 200, (n, normal)
        assert normal.body["stock_records"][0]["quantity"] == n + 1

    now = (await other_tenant.get(f"/stock/stock-records/{record['id']}")).body
    assert now["quantity"] == ROUNDS, "every normal write was applied, once"
    log = platform["stock"].log_file.read_text(errors="replace")
    for request_id in failing_ids:
        assert f"[{request_id}] unhandled error on PATCH /api/v1/products/{sku}" in log


async def test_a_service_refusing_a_batch_item_is_never_reported_as_503(tenant: Client):
    # orders would refuse this id: it is that item's error, not the batch's and not a 503
    refused = await tenant.post("/fulfillment/shipping/init", {"sale_ids": ["not a sale id é"]})
    assert refused.status == 200, refused
    assert refused.body["fulfillments"] == [], refused
    [error] = refused.body["errors"]
    assert (error["sale_id"], error["code"]) == ("not a sale id é", "validation"), refused
