"""Hostile input through the gateway: each gets a clear 4xx problem+json pointing at what is
wrong, and nothing of it is stored. A batch with one bad item answers for each item."""

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, ref

PROBLEM = "application/problem+json"
TITLES = {"validation": (422, "Validation failed"), "invalid_request": (400, "Invalid request")}


def assert_problem(
    answer: Answer, code: str, fields: list[str] | None = None, where: str | None = None
) -> dict[str, Any]:
    """The answer is the problem `code`, field by field; with `fields`, its errors point at
    exactly those (JSON pointers, in order), each with a message."""
    status, title = TITLES[code]
    assert answer.status == status, answer
    assert answer.headers["Content-Type"].startswith(PROBLEM), answer.headers
    body = answer.body
    assert body["type"] == f"urn:fulfil:problem:{code}", body
    assert body["title"] == title
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"], body
    if fields is not None:
        assert [e["field"] for e in body["errors"]] == fields, body
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
        if where is not None:
            assert {e["in"] for e in body["errors"]} == {where}, body
    return body


async def post_raw(client: Client, path: str, raw: str | bytes) -> Answer:
    return await client.call("POST", path, data=raw.encode() if isinstance(raw, str) else raw)


async def no_sale(client: Client, sale_id: str) -> None:
    found = await client.get(f"/sales/{sale_id}")
    assert found.status == 404, f"{sale_id} was stored: {found}"


async def sale_refused(client: Client, body: dict, code: str, fields: list[str]) -> dict:
    answer = await client.post("/sales", body)
    problem = assert_problem(answer, code, fields, where="body")
    await no_sale(client, body["sale_id"])
    return problem


# --- bounds on free-form objects -------------------------------------------------------------


async def test_an_oversized_customer_is_refused_at_the_customer(tenant: Client):
    sale_id = ref("S")
    body = sale_body(sale_id, "wh-1", ("SKU-1", 1))
    # ~600 KB of large numbers, which the events would write as `100000.0`: 1.35 MB
    body["customer"] = {"name": "Ada", "ids": [100000.0] * 66_000}
    raw = json.dumps(body)
    assert 550_000 < len(raw) < 1_000_000

    answer = await post_raw(tenant, "/sales", raw)

    problem = assert_problem(answer, "validation", ["/customer"], where="body")
    assert "at /ids: at most 64 items" in problem["errors"][0]["message"]
    await no_sale(tenant, sale_id)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("customer", {f"k{i}": "x" * 1000 for i in range(20)}, "bytes as JSON; at most 16384"),
        ("customer", {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "nested deeper than 5 levels"),
        ("customer", {f"line{i}": "x" for i in range(65)}, "64"),
        ("customer", {"street": "x" * 1001}, "at most 1000 characters"),
        ("customer", {"k" * 101: "x"}, "at most 100 characters"),
        ("customer", {"id": 2**53}, "integers must be within"),
        ("customer", {"score": 1e16}, "numbers must be finite and within"),
        ("customer", ["not", "an", "object"], "valid dictionary"),
    ],
)
async def test_free_form_objects_are_bounded(tenant: Client, field: str, value: Any, message: str):
    body = sale_body(ref("S"), "wh-1", ("SKU-1", 1))
    body[field] = value
    problem = await sale_refused(tenant, body, "validation", [f"/{field}"])
    assert message in problem["errors"][0]["message"], problem


async def test_the_largest_legal_customer_and_address_are_taken(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    body = sale_body(sale_id, location, (sku, 1))
    body["customer"] = {f"k{i:02}": "x" * 250 for i in range(62)}  # 16,059 bytes
    # the address is structured (tests/e2e/test_order_details.py has its bounds)
    body["shipping_address"] = {"lines": ["x" * 200] * 3, "city": "x" * 200, "country": "NO"}
    created = await tenant.post("/sales", body)
    assert created.status in (201, 202), created
    assert created.body["customer"] == body["customer"]
    assert created.body["shipping_address"] == body["shipping_address"]


async def test_stock_descriptions_addresses_and_notes_are_bounded(tenant: Client):
    sku, location = ref("SKU"), ref("wh")
    name = await tenant.post("/products", {"sku": sku, "name": "x" * 201})
    assert_problem(name, "validation", ["/name"], where="body")
    assert (await tenant.get(f"/products/{sku}")).status == 404

    address = await tenant.post(
        "/locations", {"location_id": location, "name": "Main", "address": {"lines": ["x"] * 65}}
    )
    assert_problem(address, "validation", ["/address"], where="body")
    assert (await tenant.get(f"/locations/{location}")).status == 404

    sku, location, record = await stocked_product(tenant, quantity=5)
    notes = await tenant.post(
        "/stock/stock-level-updates",
        {
            "sku": sku,
            "location_id": location,
            "quantity": 9,
            "update_type": "audit",
            "notes": "x" * 1001,
        },
    )
    assert_problem(notes, "validation", ["/notes"], where="body")
    nul = await tenant.post(
        "/stock/transfers",
        {
            "sku": sku,
            "from_location_id": location,
            "to_location_id": location,
            "quantity": 1,
            "notes": "a\u0000b",
        },
    )
    assert_problem(nul, "validation", ["/notes"], where="body")
    after = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert (after.body["quantity"], after.body["version"]) == (5, record["version"])


# --- strict parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ['"5"', "true", "1.0", "5e0"])
async def test_numbers_are_parsed_strictly(tenant: Client, quantity: str):
    sale_id = ref("S")
    raw = json.dumps(sale_body(sale_id, "wh-1", ("SKU-1", 1))).replace(
        '"quantity": 1', f'"quantity": {quantity}'
    )
    answer = await post_raw(tenant, "/sales", raw)
    assert_problem(answer, "validation", ["/lines/0/quantity"], where="body")
    await no_sale(tenant, sale_id)


async def test_booleans_are_parsed_strictly(tenant: Client):
    sku = ref("SKU")
    answer = await tenant.post("/products", {"sku": sku, "name": "Mug", "is_bulky": "true"})
    assert_problem(answer, "validation", ["/is_bulky"], where="body")
    assert (await tenant.get(f"/products/{sku}")).status == 404


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(tenant: Client, constant: str):
    sale_id = ref("S")
    raw = json.dumps(sale_body(sale_id, "wh-1", ("SKU-1", 1))).replace(
        '"name": "Ada"', f'"score": {constant}'
    )
    answer = await post_raw(tenant, "/sales", raw)
    problem = assert_problem(answer, "invalid_request")
    assert "not valid JSON" in problem["detail"] and constant.lstrip("-") in problem["detail"]
    await no_sale(tenant, sale_id)


async def test_integers_beyond_64_bits_are_refused_where_they_are(tenant: Client):
    sale_id = ref("S")
    raw = (
        json.dumps(sale_body(sale_id, "wh-1", ("SKU-1", 1)))
        .replace('"name": "Ada"', f'"n": {2**64}')
        .replace('"quantity": 1', f'"quantity": {-(2**70)}')
    )
    answer = await post_raw(tenant, "/sales", raw)
    problem = assert_problem(
        answer, "validation", ["/lines/0/quantity", "/customer/n"], where="body"
    )
    assert all("within" in e["message"] for e in problem["errors"])
    await no_sale(tenant, sale_id)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\\u0000b", "NUL"),
        ("a\\ud800b", "lone surrogates"),
        ("\\udfff", "lone surrogates"),
    ],
)
async def test_unstorable_text_is_refused_in_any_field(tenant: Client, text: str, message: str):
    sale_id = ref("S")
    body = json.dumps(sale_body(sale_id, "wh-1", ("SKU-1", 1)))
    for field, raw in [
        ("/shop/shop_name", body.replace('"Test shop"', f'"{text}"')),
        ("/customer/name", body.replace('"Ada"', f'"{text}"')),
        ("/shipping_address", body.replace('"city"', f'"{text}"')),  # in a key: at its object
    ]:
        answer = await post_raw(tenant, "/sales", raw)
        problem = assert_problem(answer, "validation", [field], where="body")
        assert message in problem["errors"][0]["message"], problem
    await no_sale(tenant, sale_id)


async def test_a_surrogate_encoded_in_utf8_is_refused(tenant: Client):
    """Not an escape: the bytes of U+D800 as UTF-8, which json decodes with surrogatepass."""
    sale_id = ref("S")
    raw = (
        json.dumps(sale_body(sale_id, "wh-1", ("SKU-1", 1)))
        .encode()
        .replace(b'"Ada"', b'"A\xed\xa0\x80"')
    )
    answer = await post_raw(tenant, "/sales", raw)
    problem = assert_problem(answer, "validation", ["/customer/name"], where="body")
    assert "lone surrogates" in problem["errors"][0]["message"]
    await no_sale(tenant, sale_id)


@pytest.mark.parametrize("depth", [300, 999, 5000])
async def test_deep_nesting_is_refused(tenant: Client, depth: int):
    sale_id = ref("S")
    body = sale_body(sale_id, "wh-1", ("SKU-1", 1))
    raw = json.dumps(body).replace('"Ada"', "[" * depth + "]" * depth)
    answer = await post_raw(tenant, "/sales", raw)
    if depth < 900:  # decoded, then refused where it gets too deep
        problem = assert_problem(answer, "validation", where="body")
        [error] = problem["errors"]
        assert error["field"].startswith("/customer/name/0/0")
        assert "nested deeper than 32 levels" in error["message"]
    else:  # too deep to decode at all
        problem = assert_problem(answer, "invalid_request")
        assert "nested too deeply" in problem["detail"]
    await no_sale(tenant, sale_id)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/sales", {"created_from": "9999-12-31T23:59:59-14:00"}, "/created_from"),
        ("/sales", {"created_to": "0001-01-01T00:00:00+14:00"}, "/created_to"),
        ("/stock/movements", {"created_from": "9999-12-31T23:59:59-14:00"}, "/created_from"),
        ("/sales", {"offset": "1000001"}, "/offset"),
        ("/sales", {"offset": str(2**64)}, "/offset"),
        ("/sales", {"limit": "1.0"}, "/limit"),
        ("/products", {"limit": "1e2"}, "/limit"),
        ("/sales", {"channel": "web\x00"}, "/channel"),
        ("/stock/movements", {"reference": "r\x00"}, "/reference"),
        ("/stock/movements", {"reason": "bored"}, "/reason/0"),
    ],
)
async def test_query_parameters_are_parsed_strictly(
    tenant: Client, path: str, params: dict, field: str
):
    answer = await tenant.call("GET", f"{path}?{urlencode(params)}")
    assert_problem(answer, "validation", [field], where="query")


@pytest.mark.parametrize(
    ("path", "name", "value", "allowed"),
    [
        ("/stock/stock-records", "sku", "A", 100),
        ("/stock/stock-records", "location_id", "wh", 100),
        ("/stock/movements", "sku", "A", 100),
        ("/sales", "status", "pending", 7),
    ],
)
async def test_list_filters_are_bounded_in_count(
    tenant: Client, path: str, name: str, value: str, allowed: int
):
    query = urlencode([(name, value)] * allowed)
    assert (await tenant.call("GET", f"{path}?{query}")).status == 200
    query = urlencode([(name, value)] * (allowed + 1))
    answer = await tenant.call("GET", f"{path}?{query}")
    assert_problem(answer, "validation", [f"/{name}"], where="query")


async def test_a_nul_in_a_path_is_refused(tenant: Client):
    answer = await tenant.call("GET", "/sales/a%00b")
    assert_problem(answer, "validation", ["/sale_id"], where="path")


@pytest.mark.parametrize("if_match", ["²", '"²"', "1" * 5000, '"2147483648"', "0", '"1", "2"'])
async def test_if_match_must_be_one_version_number(tenant: Client, if_match: str):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    for path, change in [
        (f"/products/{sku}", {"name": "Renamed"}),
        (f"/locations/{location}", {"name": "Renamed"}),
    ]:
        before = (await tenant.get(path)).body
        answer = await tenant.call("PATCH", path, json=change, headers={"If-Match": if_match})
        problem = assert_problem(answer, "invalid_request")
        assert "If-Match" in problem["detail"]
        assert (await tenant.get(path)).body == before, "nothing changed"


async def test_if_match_of_a_current_version_still_applies(tenant: Client):
    sku, _, _ = await stocked_product(tenant, quantity=1)
    answer = await tenant.call(
        "PATCH", f"/products/{sku}", json={"name": "Renamed"}, headers={"If-Match": '"1"'}
    )
    assert answer.status == 200 and answer.body["version"] == 2, answer


async def test_webhook_endpoints_take_the_shared_bounds(tenant: Client):
    base = {"url": "https://example.com/hooks"}
    for extra, field in [
        ({"description": "a\u0000b"}, "/description"),
        ({"description": "x" * 1001}, "/description"),
        ({"enabled": "true"}, "/enabled"),
        ({"ordered": 1}, "/ordered"),
    ]:
        answer = await tenant.post("/webhooks/endpoints", {**base, **extra})
        assert_problem(answer, "validation", [field], where="body")
    listed = await tenant.get("/webhooks/endpoints")
    assert listed.body["data"] == [], "nothing stored"


# --- batches answer for each item ------------------------------------------------------------


async def pending_sales(client: Client, count: int) -> list[str]:
    sku, location, _ = await stocked_product(client, quantity=count)
    sale_ids = [ref("S") for _ in range(count)]
    for sale_id in sale_ids:
        created = await client.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.body["status"] == "pending", created
    return sale_ids


async def test_shipping_init_reports_bad_sale_ids_and_ships_the_rest(tenant: Client):
    good, other = await pending_sales(tenant, 2)
    bad = ["has space", "ünïcode", "x" * 65, "", "-leading-dash"]
    missing = ref("S")

    answer = await tenant.post(
        "/fulfillment/shipping/init", {"sale_ids": [good, *bad, missing, other]}
    )

    assert answer.status == 200, answer
    assert [f["sale_id"] for f in answer.body["fulfillments"]] == [good, other]
    assert all(f["status"] == "waiting_for_picking" for f in answer.body["fulfillments"])
    errors = {e["sale_id"]: e for e in answer.body["errors"]}
    assert set(errors) == {*bad, missing}
    for sale_id in bad:
        assert errors[sale_id]["code"] == "validation"
        assert "A sale_id must be 1-64 characters" in errors[sale_id]["detail"]
    assert errors[missing]["code"] == "not_found"
    for sale_id in (good, other):
        assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "in_fulfillment"


async def test_shipping_init_with_only_bad_ids_answers_each(tenant: Client):
    answer = await tenant.post("/fulfillment/shipping/init", {"sale_ids": ["a b", "c/d"]})
    assert answer.status == 200, answer
    assert answer.body["fulfillments"] == []
    assert [(e["sale_id"], e["code"]) for e in answer.body["errors"]] == [
        ("a b", "validation"),
        ("c/d", "validation"),
    ]


async def test_the_status_batch_reports_bad_ids_and_moves_the_rest(tenant: Client):
    [sale_id] = await pending_sales(tenant, 1)
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]

    answer = await tenant.post(
        "/fulfillment/fulfillments/status",
        {
            "updates": [
                {"id": "not-a-uuid", "status": "shipped"},
                {"id": fulfillment["id"], "status": "shipped"},
                {"id": str(uuid.uuid4()), "status": "packed"},
            ]
        },
    )

    assert answer.status == 200, answer
    assert [(f["id"], f["status"]) for f in answer.body["fulfillments"]] == [
        (fulfillment["id"], "shipped")
    ]
    first, second = answer.body["errors"]
    assert (first["id"], first["code"]) == ("not-a-uuid", "not_found")
    assert first["detail"] == "No fulfillment 'not-a-uuid'."
    assert second["code"] == "not_found"
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "shipped"


async def test_a_batch_carrying_unstorable_input_is_refused_whole(tenant: Client):
    """What no service could store (a number beyond 64 bits, NUL, a lone surrogate) is an
    encoding the request is refused for, wherever it is; a sale that is merely invalid is
    answered on its own (tests/e2e/test_sales_batches.py)."""
    good, bad = ref("S"), ref("S")
    bad_body = sale_body(bad, "wh-1", ("SKU-1", 1))
    bad_body["customer"] = {"n": 2**64}
    answer = await tenant.post(
        "/sales/batch", {"sales": [sale_body(good, "wh-1", ("SKU-1", 1)), bad_body]}
    )
    assert_problem(answer, "validation", ["/sales/1/customer/n"], where="body")
    await no_sale(tenant, good)
    await no_sale(tenant, bad)


async def test_a_batch_with_an_oversized_customer_creates_the_other_sales(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    good, bad = sale_body(ref("S"), location, (sku, 1)), sale_body(ref("S"), location, (sku, 1))
    bad["customer"] = {"ids": [100000.0] * 20_000}
    answer = await tenant.post("/sales/batch", {"sales": [bad, good]})
    assert answer.status == 200, answer
    assert [s["sale_id"] for s in answer.body["sales"]] == [good["sale_id"]]
    [error] = answer.body["errors"]
    assert (error["sale_id"], error["index"], error["code"]) == (bad["sale_id"], 0, "validation")
    [field] = error["errors"]
    assert field["field"] == "/sales/0/customer"
    assert "at /ids: at most 64 items" in field["message"]
    await no_sale(tenant, bad["sale_id"])
