"""Each distinct failure schemathesis found over the public API (docs/fuzzing.md), replayed
with the request it sent, shrunk: the answer is a documented 4xx problem+json and nothing
is stored."""

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from deploy.local.services import Platform
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, ref

PROBLEM = "application/problem+json"


async def documented(client: Client, method: str, template: str) -> set[str]:
    async with client.session.get(f"{client.base_url}/openapi.json") as response:
        document = await response.json()
    return set(document["paths"][f"/api/v1{template}"][method.lower()]["responses"])


def problem(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"].startswith(PROBLEM), answer.headers
    body = answer.body
    assert (body["type"], body["status"], body["code"]) == (
        f"urn:fulfil:problem:{code}",
        status,
        code,
    ), body
    assert isinstance(body["title"], str) and isinstance(body["detail"], str) and body["detail"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


async def test_a_taken_tenant_name_is_a_documented_409(platform: Platform, tenant: Client):
    admin = Client(tenant.session, platform.gateway_url, platform.admin_token)
    name = ref("tenant")
    assert (await admin.post("/admin/tenants", {"name": name})).status == 201

    body = problem(await admin.post("/admin/tenants", {"name": name}), 409, "duplicated")

    assert name in body["detail"]
    assert "409" in await documented(admin, "POST", "/admin/tenants")


async def test_canceling_a_sale_that_does_not_exist_is_a_documented_404(tenant: Client):
    sale_id = ref("S")
    answer = await tenant.post(
        "/sales/cancel",
        {"sale_id": sale_id, "cancel_reason": "other"},
        headers={"If-Match": 'W/"98"'},
    )

    assert sale_id in problem(answer, 404, "no_content")["detail"]
    assert "404" in await documented(tenant, "POST", "/sales/cancel")


async def test_if_match_with_several_records_is_refused_at_the_list(tenant: Client):
    _, _, first = await stocked_product(tenant, quantity=3)
    _, _, second = await stocked_product(tenant, quantity=4)

    both = [{"id": first["id"], "quantity": 0}, {"id": second["id"], "quantity": 0}]
    answer = await tenant.post(
        "/stock/stock-records/update", {"stock_records": both}, headers={"If-Match": '"1"'}
    )

    body = problem(answer, 422, "validation")
    assert fields(body) == ["/stock_records"] and body["errors"][0]["in"] == "body"
    for record, quantity in ((first, 3), (second, 4)):
        after = await tenant.get(f"/stock/stock-records/{record['id']}")
        assert after.body["quantity"] == quantity, "nothing changed"


@pytest.mark.parametrize(
    ("what", "raw"),
    [
        ("location", '{"address": {"\\ud853x": 1}, "name": "Main"}'),
        ("location", '{"address": {"k": "a\\u0000b"}}'),
        ("product", '{"name": "\\ud923\\udf6a\\ud81b"}'),
        ("product", '{"unit_type": "\\u00d8\\u0000\\u0086"}'),
    ],
)
async def test_unstorable_text_in_a_patch_is_refused(tenant: Client, what: str, raw: str):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    path = f"/products/{sku}" if what == "product" else f"/locations/{location}"
    before = (await tenant.get(path)).body

    answer = await tenant.call("PATCH", path, data=raw.encode(), headers={"If-Match": "*"})

    assert problem(answer, 422, "validation")["errors"]
    assert (await tenant.get(path)).body == before, "nothing changed"


@pytest.mark.parametrize("path", ["/sales", "/stock/movements"])
async def test_a_number_is_not_a_date(tenant: Client, path: str):
    answer = await tenant.call("GET", f"{path}?{urlencode({'created_to': '0.5'})}")

    assert fields(problem(answer, 422, "validation")) == ["/created_to"]


async def test_a_batch_customer_with_an_integer_beyond_64_bits_is_refused(tenant: Client):
    good, bad = ref("S"), ref("S")
    raw = (
        '{"sales": ['
        + json.dumps(sale_body(good, "wh", ("SKU", 1)))
        + ", "
        + json.dumps(sale_body(bad, "wh", ("SKU", 1))).replace(
            '"name": "Ada"', '"n": 182752061176583070679040'
        )
        + "]}"
    )

    answer = await tenant.call("POST", "/sales/batch", data=raw.encode())

    assert answer.status == 422 and "/sales/1/customer/n" in fields(answer.body), answer
    for sale_id in (good, bad):
        assert (await tenant.get(f"/sales/{sale_id}")).status == 404


async def test_shipping_ids_orders_refuses_are_answered_each_not_as_a_503(tenant: Client):
    ids = ["\u007f\u00db", "iZ\u00b0", "\u00de"]

    answer = await tenant.post("/fulfillment/shipping/init", {"sale_ids": ids})

    assert answer.status == 200, answer
    assert answer.body["fulfillments"] == []
    assert [(e["sale_id"], e["code"]) for e in answer.body["errors"]] == [
        (sale_id, "validation") for sale_id in ids
    ]


@pytest.mark.parametrize("quantity", ["false", "341.0"])
async def test_a_level_update_quantity_must_be_an_integer(tenant: Client, quantity: str):
    sku, location, record = await stocked_product(tenant, quantity=5)
    raw = (
        f'{{"location_id": "{location}", "sku": "{sku}", "quantity": {quantity},'
        ' "update_type": "loss", "notes": ""}'
    )

    answer = await tenant.call("POST", "/stock/stock-level-updates", data=raw.encode())

    assert fields(problem(answer, 422, "validation")) == ["/quantity"]
    after = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert (after.body["quantity"], after.body["version"]) == (5, record["version"])


async def test_a_record_version_must_be_an_integer(tenant: Client):
    _, _, record = await stocked_product(tenant, quantity=5)
    raw = f'{{"stock_records": [{{"id": "{record["id"]}", "version": 1.0, "quantity": 2}}]}}'

    answer = await tenant.call("POST", "/stock/stock-records/update", data=raw.encode())

    assert fields(problem(answer, 422, "validation")) == ["/stock_records/0/version"]
    after = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert after.body["quantity"] == 5


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/products", "/products"),
        ("/products/{sku}", "/products/0"),
        ("/fulfillment/shipping/init", "/fulfillment/shipping/init"),
        ("/webhooks/endpoints/{endpoint_id}", f"/webhooks/endpoints/{uuid.uuid4()}"),
    ],
)
@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "PUT"])
async def test_an_undocumented_method_is_a_405_that_allows_the_documented_ones(
    tenant: Client,
    template: str,
    path: str,
    method: str,
):
    methods = await _documented_methods(tenant, template)
    if method in methods:
        pytest.skip(f"{method} {template} is documented")

    answer = await tenant.call(method, path)

    problem(answer, 405, "method_not_allowed")
    allowed = {m.strip() for m in answer.headers["Allow"].split(",")}
    assert allowed == methods | ({"HEAD"} if "GET" in methods else set()), answer.headers


async def _documented_methods(client: Client, template: str) -> set[str]:
    async with client.session.get(f"{client.base_url}/openapi.json") as response:
        document = await response.json()
    return {method.upper() for method in document["paths"][f"/api/v1{template}"]}


async def test_the_live_document_names_every_problem_status_and_header_format(tenant: Client):
    async with tenant.session.get(f"{tenant.base_url}/openapi.json") as response:
        document = await response.json()
    shared = document["components"]["responses"]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]

    assert len(operations) >= 38
    for path, method, operation in operations:
        statuses = set(operation["responses"])
        if path == "/api/v1/oauth/token":  # its errors follow RFC 6749, not problem documents
            assert {"400", "401", "429"} <= statuses, (method, path)
            errors = [operation["responses"][s] for s in ("400", "401", "429")]
            assert all(set(e["content"]) == {"application/json"} for e in errors)
        else:
            admin = path.startswith("/api/v1/admin")
            # the gateway answers a tenant's own keys and clients itself: never a 504
            own = path.startswith(("/api/v1/api-keys", "/api/v1/oauth/clients"))
            expected = {"400", "401", "429", "503"}
            expected |= set() if admin else {"403"} if own else {"403", "504"}
            expected |= {"404"} if "{" in path else set()
            expected |= {"413", "422"} if "requestBody" in operation else set()
            assert expected <= statuses, (method, path, expected - statuses)
            for status in statuses - {
                "200",
                "201",
                "202",
                "204",
                "228",
            }:  # 228: created, with issues
                name = operation["responses"][status]["$ref"].rsplit("/", 1)[-1]
                assert set(shared[name]["content"]) == {PROBLEM}, (method, path, status)
        headers = {
            p["name"].lower(): p["schema"]
            for p in operation.get("parameters", [])
            if p["in"] == "header"
        }
        assert headers["x-api-version"] == {"type": "string", "enum": ["v1"]}, (method, path)
        if "if-match" in headers:
            assert headers["if-match"]["pattern"].startswith("^(\\*|"), (method, path)


@pytest.mark.parametrize("name", ["\\u0000\\u08a3", "a\\ud894b"])
async def test_a_tenant_name_postgresql_cannot_store_is_refused(
    platform: Platform, tenant: Client, name: str
):
    admin = Client(tenant.session, platform.gateway_url, platform.admin_token)

    answer = await admin.call("POST", "/admin/tenants", data=f'{{"name": "{name}"}}'.encode())

    assert fields(problem(answer, 422, "validation")) == ["/name"]
