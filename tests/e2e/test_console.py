"""The console in a real headless Chromium (Debian's package, driven by Playwright through
`executable_path`; `deploy/install_browser.py` installs it) against the real platform: sign-in
with a key and with the admin token, a sale watched to `pending` and canceled from its page
(and the If-Match conflict), a delivery resent, tenants kept apart, CSRF, framing and CSP, no
secret in any page or URL. A screenshot of each main page goes to
`.local/test-artifacts/console/`. One browser for the module; each session its own context."""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from deploy.local.services import Platform
from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.test_dead_letters import BlockedSku
from tests.support import Client, Receiver, eventually, ref

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".local" / "test-artifacts" / "console"
CHROMIUM = os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():  # `make test` and `make e2e` install it first; pytest alone:
        installer = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "deploy" / "install_browser.py"),
            stderr=asyncio.subprocess.PIPE,
        )
        _, why = await installer.communicate()
        if installer.returncode != 0:
            pytest.fail(f"{CHROMIUM} is missing and could not be installed: {why.decode()}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        # launch() gives every run a fresh, temporary user data dir; nothing is downloaded
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        yield chromium
        await chromium.close()


class Console:
    """One browser context (one cookie jar) signed in with one secret."""

    def __init__(self, context: BrowserContext, page: Page, secrets: list[str]) -> None:
        self.context = context
        self.page = page
        self.secrets = secrets  # never in a page's HTML or URL

    async def open(self, path: str, screenshot: str | None = None) -> Any:
        response = await self.page.goto(path)
        await self.check_no_secret()
        if screenshot:
            await self.page.screenshot(path=ARTIFACTS / f"{screenshot}.png", full_page=True)
        return response

    async def check_no_secret(self) -> None:
        html = await self.page.content()
        for secret in self.secrets:
            assert secret not in html, f"a secret is in the page {self.page.url}"
            assert secret not in self.page.url

    async def close(self) -> None:
        await self.context.close()


async def sign_in(browser: Browser, platform: Platform, secret: str, *also_secret: str) -> Console:
    context = await browser.new_context(base_url=platform.gateway_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    console = Console(context, page, [secret, platform.admin_token, *also_secret])
    await console.open("/console/sign-in", screenshot="sign-in")
    await page.fill("input[name=secret]", secret)
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    await console.check_no_secret()
    return console


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def test_a_tenant_watches_a_sale_become_pending_cancels_it_and_resends_a_delivery(
    browser: Browser, platform: Platform, tenant: Client, receiver: Receiver
):
    endpoint = await tenant.post(
        "/webhooks/endpoints", {"url": receiver.url, "event_types": ["sale.*"]}
    )
    assert endpoint.status == 201, endpoint
    sku, location, record = await stocked_product(tenant, quantity=2)
    short = ref("SO")
    created = await tenant.post("/sales", sale_body(short, location, (sku, 5)))
    assert (created.status, created.body["status"]) == (228, "backordered")

    console = await sign_in(browser, platform, tenant.key)
    try:
        page = console.page
        assert page.url.endswith("/console/sales"), (await page.content())[-1500:]
        cookie = next(c for c in await console.context.cookies() if c["name"] == "fulfil_console")
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            True,
            "Strict",
            "/console",
        )
        assert cookie["value"] != tenant.key

        # the backordered sale's page, then stock arrives: pending without a reload
        await console.open(f"/console/sales/{short}")
        status = page.locator("#sale-status")
        assert await status.text_content() == "backordered"
        await page.evaluate("window.stillTheSamePage = true")
        restocked = await tenant.post(
            "/stock/stock-level-updates",
            {"sku": sku, "location_id": location, "quantity": 10, "update_type": "restock"},
        )
        assert restocked.status == 200, restocked
        await expect(status).to_have_text("pending", timeout=TIMEOUT_MS)
        assert await page.evaluate("window.stillTheSamePage") is True
        assert await page.locator("#timeline tbody tr").count() == 3  # live timeline too
        line = page.locator("tr[data-line='0']")  # and the line's figures
        assert await line.locator("[data-cell=reserved]").text_content() == "5"
        assert await line.locator("[data-cell=backordered]").text_content() == "0"
        await page.screenshot(path=ARTIFACTS / "sale.png", full_page=True)

        # the list finds it by sale_id
        await console.open(f"/console/sales?sale_id={short}", screenshot="sales")
        assert await page.locator(f"a[href='/console/sales/{short}']").count() == 1

        # its deliveries arrived; resend the first, which goes out again and succeeds live
        await eventually(
            lambda: _delivered(tenant, endpoint.body["id"], created.body["id"]),
            lambda found: len(found) >= 2 and all(d["status"] == "succeeded" for d in found),
            what="the sale's deliveries",
        )
        await console.open(f"/console/sales/{short}")
        rows = page.locator("table.deliveries tbody tr")
        assert await rows.count() >= 2
        before = len(receiver.received)
        async with page.expect_navigation():
            await rows.first.locator("button", has_text="Resend").click()
        assert "The delivery is queued again." in await page.content()
        cells = page.locator("table.deliveries [data-field=status]")
        await eventually(
            cells.all_text_contents,
            lambda texts: set(texts) == {"succeeded"},
            what="the resent delivery succeeding on the page",
        )
        await eventually(lambda: _count(receiver), lambda n: n > before, what="the resent delivery")

        # cancel from the page, with a reason: the actor is the key that signed in
        await page.select_option("form.cancel select[name=reason]", "customer_request")
        async with page.expect_navigation():
            await page.click("form.cancel button")
        assert await page.locator("#sale-status").text_content() == "canceled"
        sale = await tenant.get(f"/sales/{short}")
        assert sale.body["status"] == "canceled"
        last = sale.body["status_history"][-1]
        assert last["reason"] == "customer_request"
        assert last["actor"].startswith("key:")

        # another sale moves while its page is open: the cancel is refused and says so
        moving = ref("SO")
        assert (await tenant.post("/sales", sale_body(moving, location, (sku, 1)))).status == 201
        await console.open(f"/console/sales/{moving}")
        seen = (await tenant.get(f"/sales/{moving}")).body["version"]
        edited = await tenant.call(
            "PATCH",
            f"/sales/{moving}",
            json={"lines": [{"sku": sku, "quantity": 2}]},
            headers={"If-Match": f'"{seen}"'},
        )
        assert edited.status == 200, edited
        await page.select_option("form.cancel select[name=reason]", "other")
        response_status = []
        page.on("response", lambda r: response_status.append(r.status))
        await page.click("form.cancel button")
        await page.wait_for_selector("#conflict")
        assert 409 in response_status
        assert "moved meanwhile" in await page.locator("#conflict").text_content()
        assert (await tenant.get(f"/sales/{moving}")).body["status"] == "pending"

        # handed to shipping: its fulfillment with tracking number and label on the page
        init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [moving]})
        assert init.status == 200, init
        [fulfillment] = init.body["fulfillments"]
        await eventually(
            lambda: tenant.get(f"/sales/{moving}"),
            lambda sale: sale.body["fulfillments"],
            what="the fulfillment on the sale",
        )
        await console.open(f"/console/sales/{moving}")
        assert fulfillment["tracking_number"] in await page.content()
        label = page.locator(f"a[href='/console/fulfillments/{fulfillment['id']}/label']")
        assert await label.count() == 1
        pdf = await console.context.request.get(f"/console/fulfillments/{fulfillment['id']}/label")
        assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf")
        assert (await pdf.body()).startswith(b"%PDF")

        # stock: the record, its ledger, and the update form
        await console.open(f"/console/stock?sku={sku}", screenshot="stock")
        assert await page.locator("tbody tr").count() == 1
        await console.open(f"/console/stock/records/{record['id']}")
        await page.select_option("#stock-update select[name=update_type]", "loss")
        await page.fill("#stock-update input[name=quantity]", "1")
        await page.fill("#stock-update input[name=notes]", "dropped one")
        async with page.expect_navigation():
            await page.click("#stock-update button")
        assert "The stock level is updated." in await page.content()
        assert "dropped one" in await page.locator("table").first.text_content()
        await page.screenshot(path=ARTIFACTS / "stock-record.png", full_page=True)

        # webhooks: endpoints, the endpoint's log, a delivery's attempts, a test event
        await console.open("/console/webhooks", screenshot="webhooks")
        assert await page.locator(f"a[href='/console/webhooks/{endpoint.body['id']}']").count()
        across = (
            f"/console/webhooks/deliveries?endpoint_id={endpoint.body['id']}"
            f"&subject=sale/{created.body['id']}&status=succeeded"
        )
        await console.open(across, screenshot="deliveries")
        shown = page.locator("table.deliveries tbody tr [data-field=status]")
        assert set(await shown.all_text_contents()) == {"succeeded"}
        assert await shown.count() >= 3  # created, backordered, pending (and the resend)
        await console.open(f"/console/webhooks/{endpoint.body['id']}")
        await page.click("text=Send a test event")
        await page.wait_for_selector("#ping-result")
        assert "delivered" in await page.locator("#ping-result").text_content()
        await page.screenshot(path=ARTIFACTS / "endpoint.png", full_page=True)
        await page.fill("input[name=since][type=datetime-local]", "2020-01-01T00:00")
        async with page.expect_navigation():
            await page.click("button:text-is('Recover')")
        assert "Failed deliveries are queued again." in await page.content()
        async with page.expect_navigation() as rotated:
            await page.click("text=Rotate the secret")
        assert (await rotated.value).headers["cache-control"] == "no-store"
        assert (await page.locator("#new-secret").text_content()).startswith("whsec_")
        endpoint_now = await tenant.get(f"/webhooks/endpoints/{endpoint.body['id']}")
        assert endpoint_now.body["previous_secret_expires_at"] is not None
        first = page.locator("table.deliveries tbody tr td a").first
        async with page.expect_navigation():
            await first.click()
        assert "Attempts" in await page.content()
        await console.check_no_secret()
        await page.screenshot(path=ARTIFACTS / "delivery.png", full_page=True)

        # a tenant's session is no operator's
        refused = await console.open("/console/operator")
        assert refused.status == 403
    finally:
        await console.close()


async def _delivered(tenant: Client, endpoint_id: str, sale_uuid: str) -> list[dict]:
    answer = await tenant.get(
        f"/webhooks/endpoints/{endpoint_id}/deliveries", subject=f"sale/{sale_uuid}"
    )
    return answer.body["data"]


async def _count(receiver: Receiver) -> int:
    return len(receiver.received)


async def test_a_tenant_never_sees_another_tenants_sale_stock_or_endpoint(
    browser: Browser, platform: Platform, tenant: Client, other_tenant: Client
):
    theirs = ref("SO")
    sku, location, record = await stocked_product(other_tenant, quantity=3)
    assert (await other_tenant.post("/sales", sale_body(theirs, location, (sku, 1)))).status == 201
    endpoint = await other_tenant.post(
        "/webhooks/endpoints", {"url": "http://127.0.0.1:9/hooks", "event_types": ["sale.*"]}
    )
    assert endpoint.status == 201, endpoint
    mine, low = ref("SKU"), ref("wh")
    assert (
        await tenant.post("/products", {"sku": mine, "name": "Tea", "min_level": 5})
    ).status == 201
    assert (await tenant.post("/locations", {"location_id": low, "name": "Annex"})).status == 201
    stocked = await tenant.post(
        "/stock/stock-records", {"sku": mine, "location_id": low, "quantity": 3}
    )
    assert stocked.status == 201, stocked
    console = await sign_in(browser, platform, tenant.key, other_tenant.key)
    try:
        await console.open(f"/console/stock?sku={mine}")
        assert await console.page.locator("tbody tr.low .badge.low").count() == 1  # 3 <= 5
        for path in (
            f"/console/sales/{theirs}",
            f"/console/stock/records/{record['id']}",
            f"/console/webhooks/{endpoint.body['id']}",
        ):
            answer = await console.open(path)
            assert answer.status == 404, path
        await console.open(f"/console/sales?sale_id={theirs}")
        assert theirs not in await console.page.locator("table").text_content()
        await console.open(f"/console/stock?sku={sku}")
        assert sku not in await console.page.locator("table").text_content()
        await console.open("/console/webhooks")
        assert endpoint.body["id"] not in await console.page.content()
    finally:
        await console.close()


async def test_forms_refuse_a_missing_csrf_token_and_another_origin_and_pages_refuse_framing(
    browser: Browser, platform: Platform, tenant: Client
):
    sku, location, _ = await stocked_product(tenant, quantity=3)
    sale_id = ref("SO")
    assert (await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))).status == 201
    console = await sign_in(browser, platform, tenant.key)
    try:
        page = await console.open(f"/console/sales/{sale_id}")
        headers = page.headers
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        token = await console.page.get_attribute("form.cancel input[name=csrf_token]", "value")
        version = await console.page.get_attribute("form.cancel input[name=version]", "value")
        url = f"/console/sales/{sale_id}/cancel"
        form = {"version": version, "reason": "other"}
        same = {"Origin": platform.gateway_url}

        without = await console.context.request.post(url, form=form, headers=same)
        assert without.status == 403
        forged = await console.context.request.post(
            url, form={**form, "csrf_token": "x" * 43}, headers=same
        )
        assert forged.status == 403
        elsewhere = await console.context.request.post(
            url, form={**form, "csrf_token": token}, headers={"Origin": "http://evil.example"}
        )
        assert elsewhere.status == 403
        cross_site = await console.context.request.post(
            url, form={**form, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status == 403
        assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "pending"

        # a revoked key ends its console session at the next request
        admin = Client(tenant.session, platform.gateway_url, platform.admin_token)
        keys = await admin.get(f"/admin/tenants/{tenant.tenant_id}/keys")
        [key] = [k for k in keys.body["data"] if tenant.key.startswith(k["prefix"])]
        assert (await admin.call("DELETE", f"/admin/keys/{key['id']}")).status == 204
        await console.open("/console/sales")
        assert "/console/sign-in" in console.page.url
    finally:
        await console.close()


async def test_the_operator_signs_in_with_the_admin_token(
    browser: Browser, platform: Platform, tenant: Client
):
    console = await sign_in(browser, platform, platform.admin_token, tenant.key)
    try:
        page = console.page
        assert page.url.endswith("/console/operator")
        await page.screenshot(path=ARTIFACTS / "operator.png", full_page=True)
        overview = page.locator("#overview tbody tr")
        assert await overview.count() == 4  # orders, stock, fulfilment, webhooks
        assert "ready" in await overview.first.text_content()
        await console.open(
            "/console/operator/dead-letters?service=stock", screenshot="dead-letters"
        )
        assert await page.locator("h1").text_content() == "Dead letters"
        await console.open(f"/console/operator/tenants/{tenant.tenant_id}", screenshot="tenant")
        assert tenant.key[:11] in await page.content()  # the key's shown prefix, never more
        await console.open("/console/operator/integrity")
        await page.fill("input[name=tenant_id]", tenant.tenant_id)
        async with page.expect_navigation():
            await page.click("button[value=check]")
        assert "everything agrees" in await page.locator("#integrity-report").text_content()
        await page.screenshot(path=ARTIFACTS / "integrity.png", full_page=True)
        refused = await console.open("/console/sales")
        assert refused.status == 403
        await page.goto("/console/operator")
        async with page.expect_navigation():
            await page.click("header form.sign-out button")
        assert "/console/sign-in" in page.url
        await console.open("/console/operator")
        assert "/console/sign-in" in page.url
    finally:
        await console.close()


async def test_a_wrong_secret_is_refused_and_opens_no_session(browser: Browser, platform: Platform):
    console = await sign_in(browser, platform, "fk_" + "x" * 40)
    try:
        assert "/console/sign-in" in console.page.url
        assert "unknown, revoked or wrong" in await console.page.content()
        assert not [c for c in await console.context.cookies() if c["name"] == "fulfil_console"]
    finally:
        await console.close()


async def test_the_operator_replays_a_dead_letter_from_the_console(
    browser: Browser, platform: Platform, tenant: Client, infrastructure
):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    blocked = BlockedSku(infrastructure.database_url, sku)
    await blocked.install()
    admin = Client(tenant.session, platform.gateway_url, platform.admin_token)
    sale_id = ref("S")
    try:
        created = await tenant.post(
            "/sales", sale_body(sale_id, location, (sku, 2)), headers={"Prefer": "respond-async"}
        )
        assert created.status == 202, created
        key = c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(created.body["id"]))

        async def dead_letter() -> dict | None:
            listed = await admin.get("/admin/dead-letters", service="stock", limit=1000)
            return next((d for d in listed.body["data"] if d["key"] == key), None)

        letter = await eventually(
            dead_letter, lambda found: found is not None, timeout=30, what="the dead letter"
        )
    finally:
        await blocked.remove()
    console = await sign_in(browser, platform, platform.admin_token, tenant.key)
    try:
        page = console.page
        await console.open("/console/operator/dead-letters?service=stock")
        row = page.locator(f"#dead-letter-{letter['id']}")
        assert sku in await row.text_content()  # the error names the blocked SKU
        async with page.expect_navigation():
            await row.locator("button", has_text="Replay").click()
        assert "The dead letter is replayed." in await page.content()
        await eventually(
            lambda: tenant.get(f"/sales/{sale_id}"),
            lambda sale: sale.body["status"] == "pending",
            timeout=30,
            what="the replayed sale reserved",
        )
        await console.open("/console/operator/dead-letters?service=stock&state=replayed")
        assert await page.locator(f"#dead-letter-{letter['id']}").count() == 1
    finally:
        await console.close()
