"""Every service's HTTP stack (fulfilkit.service) under a real uvicorn server: an unhandled
error is a traceable 500 that leaves the connection open for the next request, 405 names
what the path allows, HEAD answers as GET, and odd headers get 4xx or a fresh id, never 500.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request

from fulfilkit.http.internal import TenantId
from fulfilkit.logs import request_id_var
from fulfilkit.service import ServiceDefinition, create_service
from fulfilkit.settings import ServiceSettings, token_digest
from services.gateway.tests.harness import listening_socket, wait_until
from tests.support import ref

pytestmark = pytest.mark.integration
TOKEN = "test-internal-token-" + "x" * 16

router = APIRouter()


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("an unexpected failure")


@router.get("/items")
async def read_items(request: Request) -> dict[str, Any]:
    return {"port": request.client.port if request.client else None}


@router.post("/items")
async def add_item(request: Request, tenant: TenantId) -> dict[str, Any]:
    return {"port": request.client.port if request.client else None, "tenant": str(tenant)}


class LoggedErrors(logging.Handler):
    """Errors logged, each with the request id in effect when it was logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((request_id_var.get(), record.getMessage()))


@pytest.fixture
async def service(infrastructure, tmp_path: Path) -> AsyncIterator[tuple[str, LoggedErrors]]:
    schema = ref("errs").replace("-", "_")
    settings = ServiceSettings(
        database_url=infrastructure.database_url, internal_callers={"gateway": token_digest(TOKEN)}
    )
    app: FastAPI = create_service(
        ServiceDefinition(
            name=schema, settings=settings, migrations=tmp_path, routers=[router], uses_kafka=False
        )
    )
    errors = LoggedErrors()
    logging.getLogger().addHandler(errors)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, http="httptools"))
    sock = listening_socket()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started or task.done(), "service started", timeout=30)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", errors
    finally:
        server.should_exit = True
        await task
        logging.getLogger().removeHandler(errors)


async def test_a_500_is_traceable_and_the_next_request_on_its_connection_succeeds(
    service: tuple[str, LoggedErrors],
) -> None:
    url, errors = service
    tenant = "7f1c2a4e-8d1b-4c6e-9a0f-2b3c4d5e6f70"
    # One connection for everything: a server that closed it after a 500 fails the next POST.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
        ports = set()
        for n in range(10):
            async with http.get(f"{url}/boom", headers={"X-Request-Id": f"boom-{n}"}) as answer:
                body = await answer.json(content_type=None)
                assert answer.status == 500
                assert answer.headers["Content-Type"] == "application/problem+json"
                assert answer.headers["X-Request-Id"] == f"boom-{n}"
                assert (body["code"], body["status"]) == ("internal", 500)
                assert "an unexpected failure" not in str(body)
            async with http.post(
                f"{url}/items", json={}, headers={"X-Internal-Token": TOKEN, "X-Tenant-Id": tenant}
            ) as answer:
                assert answer.status == 200, await answer.text()
                body = await answer.json()
                assert body["tenant"] == tenant
                ports.add(body["port"])
        assert len(ports) == 1, "the connection outlived every 500"
    logged = [(rid, message) for rid, message in errors.seen if "unhandled" in message]
    assert [rid for rid, _ in logged] == [f"boom-{n}" for n in range(10)]
    assert all(message == "unhandled error on GET /boom" for _, message in logged)


async def test_405_names_every_method_of_the_path_and_head_answers_as_get(
    service: tuple[str, LoggedErrors],
) -> None:
    url, _ = service
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{url}/items") as answer:
            assert answer.status == 405
            assert (await answer.json(content_type=None))["code"] == "method_not_allowed"
            assert answer.headers["Allow"] == "GET, HEAD, POST"
            assert answer.headers["X-Request-Id"]
        async with http.get(f"{url}/items") as got:
            length = got.headers["Content-Length"]
        async with http.head(f"{url}/items") as answer:
            assert answer.status == 200 and await answer.read() == b""
            assert answer.headers["Content-Length"] == length
        async with http.head(f"{url}/health") as answer:
            assert answer.status == 200


@pytest.mark.parametrize("token", ["é" * 40, "\u00ff", TOKEN + "é"])
async def test_a_non_ascii_internal_token_is_refused_with_401(
    service: tuple[str, LoggedErrors],
    token: str,
) -> None:
    url, errors = service
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/items",
            json={},
            headers={
                "X-Internal-Token": token,
                "X-Tenant-Id": "7f1c2a4e-8d1b-4c6e-9a0f-2b3c4d5e6f70",
            },
        ) as answer,
    ):
        assert answer.status == 401
        assert (await answer.json(content_type=None))["code"] == "invalid_token"
    assert errors.seen == []
