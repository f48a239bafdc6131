"""A service started as deployed with LOG_FORMAT=json writes only JSON lines, and a request's
lines carry its request id and the tenant whose API key it came with."""

import json
import os
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.local.services import ServiceProcess, free_ports, service_url
from tests.support import Client, eventually, ref

pytestmark = pytest.mark.integration


def json_lines(log_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]


async def test_a_requests_line_has_its_request_id_and_tenant(database, tmp_path: Path) -> None:
    admin_token = secrets.token_urlsafe(32)
    gateway_port, nobody_there = free_ports(2)
    gateway = ServiceProcess(
        "gateway",
        "gateway.app:create_app",
        gateway_port,
        {
            **os.environ,
            "ENVIRONMENT": "development",
            "DATABASE_URL": database.url,
            "ADMIN_TOKEN": admin_token,
            "ORDERS_URL": service_url(nobody_there),  # so that the request logs a warning
            "LOG_FORMAT": "json",
        },
        tmp_path,
    )
    gateway.start()
    try:
        gateway.wait_ready(60)
        async with aiohttp.ClientSession() as http:
            admin = Client(http, gateway.url, admin_token)
            created = await admin.post("/admin/tenants", {"name": ref("logs")})
            assert created.status == 201, created
            tenant = created.body["tenant"]["id"]
            client = Client(http, gateway.url, created.body["api_key"])
            request_id = ref("req")
            answer = await client.call("GET", "/sales", headers={"X-Request-Id": request_id})
            assert answer.status >= 500, answer
            assert answer.headers["X-Request-Id"] == request_id

        async def lines_of_the_request() -> list[dict[str, Any]]:
            return [
                line
                for line in json_lines(gateway.log_file)
                if line.get("request_id") == request_id
            ]

        [line, *_] = await eventually(lines_of_the_request, bool, what="the request's line")
    finally:
        gateway.stop()
    assert line["tenant"] == tenant
    assert line["service"] == "gateway"
    assert line["level"] == "WARNING"
    assert line["logger"] == "gateway.upstream"
    assert "orders unreachable on GET /api/v1/sales" in line["message"]
    every = json_lines(gateway.log_file)  # each line parses, uvicorn's own included
    assert all({"time", "level", "service", "logger", "message"} <= set(line) for line in every)
    startup = [line for line in every if line["logger"] == "uvicorn.error"]
    assert startup, "uvicorn's lines are JSON too"
    assert all("request_id" not in line and "tenant" not in line for line in startup)
