"""Shipping labels through the gateway: a PDF from shipping init on, 404 before."""

import io
import json

import pypdf

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref

PDF = "application/pdf"


async def label(client: Client, fulfillment: str) -> tuple[int, dict[str, str], bytes]:
    async with client.session.get(
        f"{client.base_url}/api/v1/fulfillment/fulfillments/{fulfillment}/label",
        headers={"Authorization": f"Bearer {client.key}"},
    ) as answer:
        return answer.status, dict(answer.headers), await answer.read()


def page_lines(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text().splitlines()


async def test_a_claimed_sale_has_a_printable_label_and_none_before(
    tenant: Client, other_tenant: Client
):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    body = sale_body(sale_id, location, (sku, 2)) | {
        "customer": {"name": "Ada Lovelace"},
        "shipping_address": {
            "address1": "12 St James's Square",
            "city": "London",
            "postcode": "SW1Y 4JH",
            "country": "GB",
        },
    }
    created = await tenant.post("/sales", body)
    assert created.status == 201 and created.body["status"] == "pending", created
    assert created.body["fulfillments"] == []

    # before shipping init there is no fulfillment, so no label: a fulfillment id nobody
    # has yet, or one that is not an id, is a problem, never a PDF
    for missing in ("00000000-0000-4000-8000-000000000000", sale_id):
        status, headers, raw = await label(tenant, missing)
        assert status == 404, raw
        assert headers["Content-Type"] == "application/problem+json"
        problem = json.loads(raw)
        assert (problem["status"], problem["code"]) == (404, "no_content"), problem
        assert problem["detail"] == f"No fulfillment {missing!r}."

    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert init.status == 200 and init.body["errors"] == [], init
    [fulfillment] = init.body["fulfillments"]
    tracking = fulfillment["tracking_number"]

    status, headers, pdf = await label(tenant, fulfillment["id"])

    assert status == 200, pdf
    assert headers["Content-Type"] == PDF
    assert headers["Content-Disposition"] == f'inline; filename="label-{tracking}.pdf"'
    assert int(headers["Content-Length"]) == len(pdf)
    assert pdf.startswith(b"%PDF-")
    lines = page_lines(pdf)
    assert tracking in lines, "the tracking number reads back from the label's text"
    assert lines[0] == "Fulfil Post", "the provider's name for people"
    assert lines[lines.index("TO") + 1 :][:4] == [
        "Ada Lovelace",
        "12 St James's Square",
        "London SW1Y 4JH",
        "GB",
    ]
    assert lines[lines.index("FROM") + 1 : lines.index("TO")] == ["Main warehouse"]
    assert f"Fulfillment {fulfillment['fulfillment_id']} Sale {sale_id}" in lines
    assert "BULKY" not in lines

    # another tenant cannot read it, and cannot tell it exists
    status, headers, raw = await label(other_tenant, fulfillment["id"])
    assert status == 404 and headers["Content-Type"] == "application/problem+json", raw
    assert json.loads(raw)["code"] == "no_content"


async def test_a_bulky_shipment_is_marked_and_sent_from_its_locations_address(tenant: Client):
    sku, location = ref("SKU"), ref("wh")
    product = await tenant.post("/products", {"sku": sku, "name": "Sofa", "is_bulky": True})
    assert product.status == 201, product
    loc = await tenant.post(
        "/locations",
        {
            "location_id": location,
            "name": "Big warehouse",
            "address": {"address1": "1 Dock Road", "city": "Bergen", "postcode": "5003"},
        },
    )
    assert loc.status == 201, loc
    record = await tenant.post(
        "/stock/stock-records", {"sku": sku, "location_id": location, "quantity": 1}
    )
    assert record.status == 201, record
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert created.body["status"] == "pending", created
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]
    assert fulfillment["is_bulky"] is True

    status, _, pdf = await label(tenant, fulfillment["id"])

    assert status == 200, pdf
    lines = page_lines(pdf)
    assert "BULKY" in lines and fulfillment["tracking_number"] in lines
    assert lines[lines.index("FROM") + 1 : lines.index("TO")] == [
        "Big warehouse",
        "1 Dock Road",
        "Bergen 5003",
    ]
    assert lines[lines.index("TO") + 1 :][:3] == ["Ada", "Oslo", "NO"]


async def test_the_label_is_in_the_public_openapi_document_as_a_pdf(tenant: Client):
    async with tenant.session.get(f"{tenant.base_url}/openapi.json") as answer:
        document = await answer.json()

    operation = document["paths"]["/api/v1/fulfillment/fulfillments/{fulfillment_id}/label"]["get"]
    assert operation["responses"]["200"]["content"] == {
        PDF: {"schema": {"type": "string", "format": "binary"}}
    }
    assert operation["responses"]["404"] == {"$ref": "#/components/responses/NotFound"}


async def test_a_canceled_fulfillments_label_says_not_to_ship_it(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert created.body["status"] == "pending", created
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]
    _, _, before = await label(tenant, fulfillment["id"])
    assert "CANCELED - DO NOT SHIP" not in page_lines(before)

    canceled = await tenant.post(
        "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
    )
    assert canceled.status == 200, canceled

    async def lines_now() -> list[str]:
        status, _, pdf = await label(tenant, fulfillment["id"])
        assert status == 200, pdf
        return page_lines(pdf)

    lines = await eventually(
        lines_now, lambda lines: "CANCELED - DO NOT SHIP" in lines, what="the label crossed out"
    )
    assert fulfillment["tracking_number"] in lines
