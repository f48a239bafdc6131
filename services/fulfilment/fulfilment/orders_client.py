"""The synchronous ask to `orders`, which alone decides whether a sale may be shipped."""

from typing import Any
from uuid import UUID

import aiohttp

from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilkit.http.problems import Problem
from fulfilkit.logs import request_id_var


class OrdersClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token

    async def claim(self, tenant_id: UUID, actor: str, sale_ids: list[str]) -> dict[str, Any]:
        headers = {
            INTERNAL_TOKEN_HEADER: self._token, TENANT_HEADER: str(tenant_id),
            ACTOR_HEADER: actor, "X-Request-Id": request_id_var.get(),
        }
        try:
            async with self._session.post(
                f"{self._base_url}/internal/sales/claim", json={"sale_ids": sale_ids},
                headers=headers,
            ) as response:
                if response.status != 200:
                    raise Problem("unavailable", f"orders answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError):
            raise Problem("unavailable", "The orders service cannot be reached.") from None
