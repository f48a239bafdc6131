"""What a client sees at the edges: auth, tenancy, bad input, duplicates, paths."""

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, ref

PROBLEM = "application/problem+json"


async def test_missing_or_unknown_key_is_invalid_token(tenant: Client):
    for key in (None, "fk_not-a-key"):
        answer = await Client(tenant.session, tenant.base_url, key).get("/sales")
        assert answer.status == 401
        assert answer.problem_code == "invalid_token"
        assert answer.headers["Content-Type"].startswith(PROBLEM)


async def test_another_tenants_sale_is_not_found(tenant: Client, other_tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    assert (await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))).status == 201
    answer = await other_tenant.get(f"/sales/{sale_id}")
    assert answer.status == 404
    assert answer.problem_code == "no_content"
    listed = await other_tenant.get("/sales")
    assert all(s["sale_id"] != sale_id for s in listed.body["data"])


async def test_malformed_json_is_invalid_request(tenant: Client):
    answer = await tenant.call("POST", "/sales", data=b'{"sale_id": ')
    assert answer.status == 400
    assert answer.problem_code == "invalid_request"
    assert "Traceback" not in str(answer.body)


async def test_wrong_field_types_are_validation_errors_with_pointers(tenant: Client):
    body = sale_body(ref("S"), "wh-1", ("A", 1))
    body["lines"][0]["quantity"] = "three"
    body["shop"] = {"channel": "web"}
    answer = await tenant.post("/sales", body)
    assert answer.status == 422
    assert answer.problem_code == "validation"
    fields = {e["field"] for e in answer.body["errors"]}
    assert {"/lines/0/quantity", "/shop/shop_name"} <= fields


async def test_empty_lines_and_nonpositive_quantities_are_refused(tenant: Client):
    empty = await tenant.post("/sales", sale_body(ref("S"), "wh-1"))
    zero = await tenant.post("/sales", sale_body(ref("S"), "wh-1", ("A", 0)))
    assert (empty.status, zero.status) == (422, 422)
    assert {e["field"] for e in zero.body["errors"]} == {"/lines/0/quantity"}


async def test_second_sale_with_same_id_is_duplicated(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    assert (await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))).status == 201
    again = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert again.status == 409
    assert again.problem_code == "duplicated"


async def test_trailing_slash_works_without_redirect(tenant: Client):
    plain = await tenant.get("/products")
    slashed = await tenant.get("/products/")
    assert plain.status == slashed.status == 200


async def test_unknown_api_version_is_refused(tenant: Client):
    answer = await tenant.call("GET", "/sales", headers={"X-API-Version": "v9"})
    assert answer.status == 400
    assert answer.problem_code == "invalid_request"


async def test_pagination_has_totals_and_links(tenant: Client):
    for _ in range(3):
        await tenant.post("/locations", {"location_id": ref("wh"), "name": "W"})
    page = await tenant.get("/locations", limit=2, offset=0)
    assert page.body["pagination"] == {"total_count": 3, "offset": 0, "limit": 2}
    assert 'rel="next"' in page.headers["Link"]


async def test_services_refuse_requests_that_skip_the_gateway(platform, http):
    async with http.get(f"{platform['orders'].url}/api/v1/sales") as response:
        assert response.status == 401
        assert (await response.json(content_type=None))["code"] == "invalid_token"


async def test_request_ids_are_echoed_through_the_gateway(tenant: Client):
    answer = await tenant.call("GET", "/sales", headers={"X-Request-Id": "trace-me-123"})
    assert answer.headers["x-request-id"] == "trace-me-123"
    fresh = await tenant.get("/sales")
    assert len(fresh.headers["x-request-id"]) >= 16


async def test_every_service_answers_health_and_readiness(platform, http):
    for service in platform:
        for path in ("/health", "/ready"):
            async with http.get(f"{service.url}{path}") as response:
                assert response.status == 200, (service.name, path)
