"""A steady load of full sale lifecycles through the gateway, as patient clients send it.

Each client retries what did not get a final answer (a dropped connection, a timeout, any
5xx, or an answer with `Retry-After`) with the same `Idempotency-Key`, and records every
answer it saw. What was answered 2xx goes in the ledger the checks hold the platform to.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.chaos.receivers import StoppableReceiver

ALL_SCOPES = [
    "sales:read",
    "sales:write",
    "stock:read",
    "stock:write",
    "fulfillment:read",
    "fulfillment:write",
    "webhooks:read",
    "webhooks:write",
    "admin",
]
SKUS = 5
STOCK_PER_SKU = 1_000_000
RETRY_FOR = 120.0  # a client gives up on one request after this long
PENDING_WAIT = 90.0  # how long a lifecycle waits for an accepted sale to become pending


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def outcome(answer: Answer | None, error: str | None = None) -> str:
    """What a client saw, in the words of the report: `2xx`, the 4xx code, `503` (problem+json
    with `Retry-After`), `503 bare` (without them), `500`, `504`..., `conn` (refused or
    dropped), `hang` (no answer within the client's timeout)."""
    if answer is None:
        return error or "conn"
    if 200 <= answer.status < 300:
        return "2xx"
    if 400 <= answer.status < 500:
        return str(answer.status)
    if answer.status == 503:
        problem = answer.headers.get("Content-Type", "").startswith("application/problem+json")
        return "503" if problem and "Retry-After" in answer.headers else "503 bare"
    return str(answer.status)


@dataclass
class Seen:
    """Every answer the clients got, with when, so it can be put against a fault's window."""

    events: list[tuple[float, str, str]] = field(default_factory=list)  # (at, outcome, call)

    def add(self, what: str, call: str) -> None:
        self.events.append((time.monotonic(), what, call))

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        return Counter(o for at, o, _ in self.events if since <= at <= until)

    def calls(self, outcome_: str) -> Counter[str]:
        """Which calls got this outcome, and how often."""
        return Counter(call for _, o, call in self.events if o == outcome_)


@dataclass
class Ledger:
    """What the platform told clients it did: answered 2xx."""

    created: set[str] = field(default_factory=set)
    canceled: set[str] = field(default_factory=set)
    shipped: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    gave_up: Counter[str] = field(default_factory=Counter)  # call -> requests abandoned


class Api:
    """One tenant's key against the gateway, retrying like a patient client."""

    def __init__(
        self, session: aiohttp.ClientSession, gateway: str, key: str, seen: Seen, timeout: float
    ) -> None:
        self.session = session
        self.base = f"{gateway}/api/v1"
        self.key = key
        self.seen = seen
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def once(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> Answer:
        all_headers = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        async with self.session.request(
            method,
            f"{self.base}{path}",
            data=data,
            headers=all_headers,
            params=params or None,
            timeout=self.timeout,
        ) as response:
            raw = await response.read()
            try:
                parsed: Any = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                parsed = raw.decode(errors="replace")
            return Answer(response.status, parsed, dict(response.headers))

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        record: bool = True,
        retry_for: float = RETRY_FOR,
        **params: Any,
    ) -> Answer | None:
        """The final answer (2xx or 4xx without `Retry-After`), or None when it never came."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
        deadline = time.monotonic() + retry_for
        label = f"{method} {path.split('?')[0]}"
        while True:
            answer: Answer | None = None
            error = "conn"
            try:
                answer = await self.once(method, path, body, headers, **params)
            except TimeoutError:
                error = "hang"
            except aiohttp.ClientError:
                error = "conn"
            if record:
                self.seen.add(outcome(answer, error), label)
            if answer is not None and answer.status < 500 and "Retry-After" not in answer.headers:
                return answer
            if time.monotonic() > deadline:
                return None
            wait = 0.5
            if answer is not None and answer.headers.get("Retry-After", "").isdigit():
                wait = min(5.0, float(answer.headers["Retry-After"]))
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))

    async def get(self, path: str, **kwargs: Any) -> Answer | None:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> Answer | None:
        return await self.call("POST", path, body, **kwargs)


@dataclass
class Tenant:
    id: str
    api: Api
    location: str
    skus: list[str]
    receivers: list[tuple[StoppableReceiver, list[str]]]  # (receiver, event types)


async def new_tenant(
    session: aiohttp.ClientSession,
    gateway: str,
    admin_token: str,
    seen: Seen,
    timeout: float,
    label: str,
    subscriptions: list[tuple[StoppableReceiver, list[str]]],
) -> Tenant:
    """A tenant with a key of every scope (`admin` included, for the integrity check),
    stock at one location, and webhook endpoints for `subscriptions`."""
    admin = Api(session, gateway, admin_token, seen, timeout)
    made = await admin.post(
        "/admin/tenants", {"name": f"chaos-{label}-{uuid.uuid4().hex[:8]}"}, record=False
    )
    assert made is not None and made.status == 201, made
    tenant_id = made.body["tenant"]["id"]
    key = await admin.post(f"/admin/tenants/{tenant_id}/keys", {"scopes": ALL_SCOPES}, record=False)
    assert key is not None and key.status == 201, key
    api = Api(session, gateway, key.body["api_key"], seen, timeout)
    location = "wh-1"
    answer = await api.post("/locations", {"location_id": location, "name": "Main"}, record=False)
    assert answer is not None and answer.status == 201, answer
    skus = [f"SKU-{i}" for i in range(SKUS)]
    for sku in skus:
        for path, body in (
            ("/products", {"sku": sku, "name": sku}),
            (
                "/stock/stock-records",
                {"sku": sku, "location_id": location, "quantity": STOCK_PER_SKU},
            ),
        ):
            answer = await api.post(path, body, record=False)
            assert answer is not None and answer.status == 201, answer
    for receiver, types in subscriptions:
        answer = await api.post(
            "/webhooks/endpoints", {"url": receiver.url, "event_types": types}, record=False
        )
        assert answer is not None and answer.status == 201, answer
    return Tenant(tenant_id, api, location, skus, subscriptions)


def sale_body(sale_id: str, tenant: Tenant) -> dict[str, Any]:
    lines = random.sample(tenant.skus, random.randint(1, 2))
    return {
        "sale_id": sale_id,
        "shop": {"channel": "web", "shop_name": "Chaos"},
        "location_id": tenant.location,
        "lines": [{"sku": sku, "quantity": random.randint(1, 3)} for sku in lines],
        "customer": {"name": "Ada"},
        "shipping_address": {"city": "Oslo"},
    }


class Lifecycles:
    """`workers` clients, each running whole lifecycles one after another, at most `rate`
    sales a second in all: create, wait for pending, then ship (60%), cancel (25%), ship and
    cancel at once (10%) or leave it pending (5%)."""

    def __init__(
        self, tenants: list[Tenant], ledger: Ledger, *, workers: int, rate: float, run: str
    ) -> None:
        self.tenants = tenants
        self.ledger = ledger
        self.workers = workers
        self.interval = workers / rate
        self.run = run
        self._counter = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]

    async def stop(self) -> None:
        """Let every lifecycle in progress finish (its retries included), start no more."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self.run}-{self._counter:06d}"

    async def _worker(self, index: int) -> None:
        await asyncio.sleep(self.interval * index / self.workers)
        while not self._stop.is_set():
            started = time.monotonic()
            tenant = self.tenants[self._counter % len(self.tenants)]
            await self.lifecycle(tenant, self._next_id())
            rest = self.interval - (time.monotonic() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def lifecycle(self, tenant: Tenant, sale_id: str) -> None:
        api = tenant.api
        self.ledger.attempted.add(sale_id)
        created = await api.post("/sales", sale_body(sale_id, tenant))
        if created is None:
            self.ledger.gave_up["POST /sales"] += 1
            return
        if created.status not in (201, 202, 228):
            return  # a 409 duplicated: an earlier attempt stored it and lost the answer
        self.ledger.created.add(sale_id)
        if not await self._pending(api, sale_id):
            return
        fate = random.random()
        if fate < 0.60:
            await self.ship(api, sale_id)
        elif fate < 0.85:
            await self.cancel(api, sale_id)
        elif fate < 0.95:
            await asyncio.gather(self.ship(api, sale_id), self.cancel(api, sale_id))

    async def _pending(self, api: Api, sale_id: str) -> bool:
        deadline = time.monotonic() + PENDING_WAIT
        while time.monotonic() < deadline:
            answer = await api.get(f"/sales/{sale_id}")
            if answer is not None and answer.status == 200:
                if answer.body["status"] == "pending":
                    return True
                if answer.body["status"] != "awaiting_stock":
                    return False
            await asyncio.sleep(0.5)
        return False

    async def ship(self, api: Api, sale_id: str) -> None:
        init = await api.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
        if init is None:
            self.ledger.gave_up["POST /fulfillment/shipping/init"] += 1
            return
        if init.status != 200 or not init.body["fulfillments"]:
            return  # canceled first, say
        fulfillment = init.body["fulfillments"][0]["id"]
        shipped = await api.post(
            f"/fulfillment/fulfillments/{fulfillment}/status", {"status": "shipped"}
        )
        if shipped is None:
            self.ledger.gave_up["POST /fulfillment/fulfillments/{id}/status"] += 1
        elif shipped.status == 200:
            self.ledger.shipped.add(sale_id)

    async def cancel(self, api: Api, sale_id: str) -> None:
        answer = await api.post(
            "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
        )
        if answer is None:
            self.ledger.gave_up["POST /sales/cancel"] += 1
        elif answer.status == 200:
            self.ledger.canceled.add(sale_id)
