"""The stock catalogue through the gateway: products and locations, their versions and errors."""

import pytest

from tests.support import Answer, Client, ref


async def patch(client: Client, path: str, body: dict, if_match: str | None = None) -> Answer:
    headers = {"If-Match": if_match} if if_match is not None else None
    return await client.call("PATCH", path, json=body, headers=headers)


def fields(answer: Answer) -> set[str]:
    return {e["field"] for e in answer.body.get("errors", [])}


# Products


async def test_product_is_created_with_every_field_and_version_one(tenant: Client):
    sku = ref("SKU")
    created = await tenant.post(
        "/products",
        {
            "sku": sku,
            "name": "Pallet of bricks",
            "ean": "4006381333931",
            "unit_type": "pallet",
            "min_level": 3,
            "is_bulky": True,
        },
    )
    assert created.status == 201, created
    expected = {
        "sku": sku,
        "name": "Pallet of bricks",
        "ean": "4006381333931",
        "unit_type": "pallet",
        "min_level": 3,
        "is_bulky": True,
        "version": 1,
    }
    assert {k: created.body[k] for k in expected} == expected

    fetched = await tenant.get(f"/products/{sku}")
    assert fetched.status == 200
    assert {k: fetched.body[k] for k in expected} == expected


async def test_product_defaults_apply_when_optional_fields_are_left_out(tenant: Client):
    created = await tenant.post("/products", {"sku": ref("SKU"), "name": "Mug"})
    assert created.status == 201, created
    assert (
        created.body["ean"],
        created.body["unit_type"],
        created.body["min_level"],
        created.body["is_bulky"],
    ) == (None, "unit", 0, False)


async def test_second_product_with_same_sku_is_duplicated_and_first_kept(tenant: Client):
    sku = ref("SKU")
    assert (await tenant.post("/products", {"sku": sku, "name": "First"})).status == 201
    again = await tenant.post("/products", {"sku": sku, "name": "Second"})
    assert again.status == 409
    assert again.problem_code == "duplicated"
    assert (await tenant.get(f"/products/{sku}")).body["name"] == "First"


async def test_invalid_product_fields_are_validation_errors_with_pointers(tenant: Client):
    answer = await tenant.post("/products", {"sku": ref("SKU"), "min_level": -1})
    assert answer.status == 422
    assert answer.problem_code == "validation"
    assert fields(answer) == {"/name", "/min_level"}

    more = await tenant.post(
        "/products",
        {
            "sku": "has space",
            "name": "",
            "ean": "12ab",
            "is_bulky": "very",
            "colour": "blue",
        },
    )
    assert more.status == 422
    assert {"/sku", "/name", "/ean", "/is_bulky", "/colour"} <= fields(more)


async def test_unknown_product_is_not_found(tenant: Client):
    answer = await tenant.get(f"/products/{ref('missing')}")
    assert answer.status == 404
    assert answer.problem_code == "no_content"
    patched = await patch(tenant, f"/products/{ref('missing')}", {"name": "x"})
    assert patched.status == 404
    assert patched.problem_code == "no_content"


async def test_patch_changes_only_given_fields_and_bumps_version(tenant: Client):
    sku = ref("SKU")
    created = await tenant.post(
        "/products",
        {"sku": sku, "name": "Mug", "ean": "12345678", "min_level": 2, "is_bulky": False},
    )
    patched = await patch(tenant, f"/products/{sku}", {"min_level": 9, "is_bulky": True})
    assert patched.status == 200, patched
    assert patched.body["version"] == 2
    assert (patched.body["min_level"], patched.body["is_bulky"]) == (9, True)
    unchanged = ("sku", "name", "ean", "unit_type", "created_at")
    assert {k: patched.body[k] for k in unchanged} == {k: created.body[k] for k in unchanged}
    fetched = (await tenant.get(f"/products/{sku}")).body
    stock = ("stock_level", "location_stock_levels")  # only the product's view shows its stock
    assert {k: v for k, v in fetched.items() if k not in stock} == patched.body


async def test_patch_with_current_if_match_applies(tenant: Client):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    for if_match in ('"1"', 'W/"2"', "3"):
        answer = await patch(tenant, f"/products/{sku}", {"name": f"Mug {if_match}"}, if_match)
        assert answer.status == 200, (if_match, answer)
    assert (await tenant.get(f"/products/{sku}")).body["version"] == 4


async def test_patch_with_stale_if_match_is_conflict_and_changes_nothing(tenant: Client):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    assert (await patch(tenant, f"/products/{sku}", {"name": "Cup"})).status == 200
    stale = await patch(tenant, f"/products/{sku}", {"name": "Beaker"}, if_match='"1"')
    assert stale.status == 409
    assert stale.problem_code == "conflict"
    current = await tenant.get(f"/products/{sku}")
    assert (current.body["name"], current.body["version"]) == ("Cup", 2)


async def test_if_match_that_is_not_a_version_is_invalid_request(tenant: Client):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    answer = await patch(tenant, f"/products/{sku}", {"name": "Cup"}, if_match='"abc"')
    assert answer.status == 400
    assert answer.problem_code == "invalid_request"


async def test_patch_with_invalid_values_is_refused_with_pointers(tenant: Client):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    answer = await patch(tenant, f"/products/{sku}", {"min_level": -2, "sku": "other"})
    assert answer.status == 422
    assert answer.problem_code == "validation"
    assert fields(answer) == {"/min_level", "/sku"}
    assert (await tenant.get(f"/products/{sku}")).body["version"] == 1


async def test_another_tenant_can_neither_see_nor_patch_a_product(
    tenant: Client,
    other_tenant: Client,
):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mine"})
    seen = await other_tenant.get(f"/products/{sku}")
    assert seen.status == 404
    assert seen.problem_code == "no_content"
    patched = await patch(other_tenant, f"/products/{sku}", {"name": "Theirs"})
    assert patched.status == 404
    assert patched.problem_code == "no_content"
    listed = await other_tenant.get("/products")
    assert all(p["sku"] != sku for p in listed.body["data"])
    mine = await tenant.get(f"/products/{sku}")
    assert (mine.body["name"], mine.body["version"]) == ("Mine", 1)
    # SKUs are per tenant: the other tenant may use the same one for its own product
    theirs = await other_tenant.post("/products", {"sku": sku, "name": "Theirs"})
    assert theirs.status == 201


async def test_products_are_listed_by_sku_with_pages(tenant: Client):
    skus = sorted(ref("SKU") for _ in range(3))
    for sku in reversed(skus):
        await tenant.post("/products", {"sku": sku, "name": "Mug"})
    first = await tenant.get("/products", limit=2)
    assert first.status == 200
    assert [p["sku"] for p in first.body["data"]] == skus[:2]
    assert first.body["pagination"] == {"total_count": 3, "offset": 0, "limit": 2}
    assert 'rel="next"' in first.headers["Link"]
    second = await tenant.get("/products", limit=2, offset=2)
    assert [p["sku"] for p in second.body["data"]] == skus[2:]
    assert 'rel="prev"' in second.headers["Link"]


# Locations


async def test_location_is_created_fetched_and_patched_with_versions(tenant: Client):
    location = ref("wh")
    address = {"street": "1 Dock Rd", "city": "Oslo", "country": "NO"}
    created = await tenant.post(
        "/locations", {"location_id": location, "name": "Main", "address": address}
    )
    assert created.status == 201, created
    assert {k: created.body[k] for k in ("location_id", "name", "address", "version")} == {
        "location_id": location,
        "name": "Main",
        "address": address,
        "version": 1,
    }

    fetched = await tenant.get(f"/locations/{location}")
    assert fetched.status == 200
    assert fetched.body == created.body

    patched = await patch(tenant, f"/locations/{location}", {"name": "North"})
    assert patched.status == 200, patched
    assert (patched.body["name"], patched.body["address"], patched.body["version"]) == (
        "North",
        address,
        2,
    )
    moved = await patch(tenant, f"/locations/{location}", {"address": {"city": "Bergen"}}, "2")
    assert moved.status == 200, moved
    assert (moved.body["name"], moved.body["address"], moved.body["version"]) == (
        "North",
        {"city": "Bergen"},
        3,
    )


async def test_second_location_with_same_id_is_duplicated(tenant: Client):
    location = ref("wh")
    assert (await tenant.post("/locations", {"location_id": location, "name": "A"})).status == 201
    again = await tenant.post("/locations", {"location_id": location, "name": "B"})
    assert again.status == 409
    assert again.problem_code == "duplicated"
    assert (await tenant.get(f"/locations/{location}")).body["name"] == "A"


async def test_invalid_location_fields_are_validation_errors_with_pointers(tenant: Client):
    answer = await tenant.post("/locations", {"location_id": "/bad id", "address": "Oslo"})
    assert answer.status == 422
    assert answer.problem_code == "validation"
    assert fields(answer) == {"/location_id", "/name", "/address"}


async def test_unknown_location_is_not_found(tenant: Client):
    answer = await tenant.get(f"/locations/{ref('wh')}")
    assert answer.status == 404
    assert answer.problem_code == "no_content"
    patched = await patch(tenant, f"/locations/{ref('wh')}", {"name": "x"})
    assert patched.status == 404
    assert patched.problem_code == "no_content"


async def test_location_patch_with_stale_if_match_is_conflict(tenant: Client):
    location = ref("wh")
    await tenant.post("/locations", {"location_id": location, "name": "A"})
    assert (await patch(tenant, f"/locations/{location}", {"name": "B"})).status == 200
    stale = await patch(tenant, f"/locations/{location}", {"name": "C"}, if_match="1")
    assert stale.status == 409
    assert stale.problem_code == "conflict"
    current = await tenant.get(f"/locations/{location}")
    assert (current.body["name"], current.body["version"]) == ("B", 2)


async def test_another_tenant_can_neither_see_nor_patch_a_location(
    tenant: Client,
    other_tenant: Client,
):
    location = ref("wh")
    await tenant.post("/locations", {"location_id": location, "name": "Mine"})
    assert (await other_tenant.get(f"/locations/{location}")).status == 404
    patched = await patch(other_tenant, f"/locations/{location}", {"name": "Theirs"})
    assert patched.status == 404
    assert patched.problem_code == "no_content"
    assert (await other_tenant.get("/locations")).body["pagination"]["total_count"] == 0
    assert (await tenant.get(f"/locations/{location}")).body["name"] == "Mine"


async def test_locations_are_listed_in_pages_with_links(tenant: Client):
    ids = sorted(ref("wh") for _ in range(5))
    for location in ids:
        assert (
            await tenant.post("/locations", {"location_id": location, "name": "W"})
        ).status == 201
    seen, offset, pages = [], 0, 0
    while True:
        page = await tenant.get("/locations", limit=2, offset=offset)
        assert page.status == 200
        assert page.body["pagination"]["total_count"] == 5
        assert page.headers["Total-Count"] == "5"
        seen += [loc["location_id"] for loc in page.body["data"]]
        pages += 1
        if 'rel="next"' not in page.headers.get("Link", ""):
            break
        # Relative: the gateway never builds links from the client's Host (PUBLIC_BASE_URL).
        assert page.headers["Link"].startswith("</api/v1/locations?")
        offset += 2
    assert (seen, pages) == (ids, 3)


@pytest.mark.parametrize("field", ["name", "unit_type", "min_level", "is_bulky"])
async def test_patch_setting_a_required_field_to_null_is_a_validation_error(
    tenant: Client, field: str
):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    answer = await tenant.call("PATCH", f"/products/{sku}", json={field: None})
    assert answer.status == 422, answer
    assert {e["field"] for e in answer.body["errors"]} == {f"/{field}"}


async def test_an_empty_patch_changes_nothing(tenant: Client):
    sku = ref("SKU")
    await tenant.post("/products", {"sku": sku, "name": "Mug"})
    answer = await tenant.call("PATCH", f"/products/{sku}", json={})
    assert (answer.status, answer.body["version"]) == (200, 1)


async def test_an_out_of_range_min_level_is_a_validation_error(tenant: Client):
    answer = await tenant.post(
        "/products", {"sku": ref("SKU"), "name": "M", "min_level": 2_000_000_000_000}
    )
    assert answer.status == 422
    assert {e["field"] for e in answer.body["errors"]} == {"/min_level"}
