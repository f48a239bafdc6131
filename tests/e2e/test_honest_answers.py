"""Every answer of the running platform is traceable and honest: request ids, 405 `Allow`,
HEAD, links that never come from `Host`, and odd headers that get 4xx instead of 500."""

import asyncio
import re
from urllib.parse import urlsplit

import aiohttp
import pytest

from deploy.local.services import Platform
from tests.e2e.stocking import stocked_product
from tests.support import Client

HEX_ID = re.compile(r"[0-9a-f]{32}")


async def raw_get(url: str, path: bytes, header: bytes) -> tuple[int, dict[bytes, bytes]]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, *lines = answer.partition(b"\r\n\r\n")[0].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


@pytest.mark.parametrize("given", [b"\xff\xfe\xfd", b"r" * 200])
async def test_every_service_replaces_an_unusable_request_id_even_on_health_and_ready(
    platform: Platform,
    given: bytes,
):
    for service in platform:
        for path in (b"/health", b"/ready"):
            status, headers = await raw_get(service.url, path, b"X-Request-Id: " + given)
            assert status == 200, (service.name, path)
            assert HEX_ID.fullmatch(headers[b"x-request-id"].decode()), (service.name, headers)


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/sales", "GET, HEAD, POST"),
        ("/sales/S-1", "GET, HEAD, PATCH"),
        ("/products", "GET, HEAD, POST"),
        ("/products/SKU-1", "GET, HEAD, PATCH"),
        ("/stock/transfers", "POST"),
        ("/fulfillment/shipping/init", "POST"),
    ],
)
async def test_405_through_the_gateway_names_what_the_path_allows(
    tenant: Client,
    path: str,
    allowed: str,
):
    for method in ("PUT", "OPTIONS", "TRACE"):
        answer = await tenant.call(method, path)
        assert answer.status == 405, (method, answer)
        assert answer.problem_code == "method_not_allowed"
        assert answer.headers["Allow"] == allowed, (method, path)
        assert answer.headers["X-Request-Id"]


async def test_head_works_wherever_get_does(tenant: Client, http: aiohttp.ClientSession):
    sku, _, record = await stocked_product(tenant, quantity=3)
    for path in (
        f"/products/{sku}",
        f"/stock/stock-records/{record['id']}",
        "/sales",
        "/stock/movements",
        "/webhooks/endpoints",
        "/products/no-such-sku",
    ):
        got = await tenant.get(path)
        async with http.head(
            f"{tenant.base_url}/api/v1{path}", headers={"Authorization": f"Bearer {tenant.key}"}
        ) as head:
            assert head.status == got.status, path
            assert await head.read() == b""
            assert head.headers["Content-Length"] == got.headers["Content-Length"], path
            assert head.headers.get("ETag") == got.headers.get("ETag")


@pytest.mark.parametrize("host", ["evil.example", r"\g<0>", r"a\1"])
async def test_links_never_carry_the_clients_host_or_a_services_address(
    tenant: Client,
    platform: Platform,
    host: str,
):
    await stocked_product(tenant, quantity=1)
    await stocked_product(tenant, quantity=1)
    page = await tenant.call("GET", "/products", headers={"Host": host}, limit=1)
    assert page.status == 200, page
    assert page.headers["Link"].startswith("</api/v1/products?"), page.headers["Link"]
    for service in platform:
        assert str(service.port) not in page.headers["Link"]


async def test_a_non_ascii_internal_token_is_401_at_every_service(
    platform: Platform,
    http: aiohttp.ClientSession,
    tenant: Client,
):
    paths = {
        "orders": "/api/v1/sales",
        "stock": "/api/v1/products",
        "fulfilment": "/api/v1/fulfillment/fulfillments/x",
        "webhooks": "/api/v1/webhooks/endpoints",
    }
    for name, path in paths.items():
        async with http.get(
            f"{platform[name].url}{path}",
            headers={"X-Internal-Token": "é" * 40, "X-Tenant-Id": tenant.tenant_id},
        ) as answer:
            assert answer.status == 401, name
            assert (await answer.json(content_type=None))["code"] == "invalid_token"
