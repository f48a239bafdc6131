"""Custom headers: strictly validated at save time (422 pointing at the header, nothing
stored), sent byte for byte, and write-only: every read shows them masked."""

import pytest

from tests.e2e.webhook_tools import StockRecord, received_count, register, started
from tests.support import Client


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-Token": "abc\n"}, "/headers/X-Token"),
        ({"X-Token": "abc\r\nX-Injected: 1"}, "/headers/X-Token"),
        ({"X-Token": "a\u0000b"}, "/headers/X-Token"),
        ({"X-Token": "caf\u00e9"}, "/headers/X-Token"),
        ({"X-Token": "x" * 1025}, "/headers/X-Token"),
        ({"X-Token\n": "abc"}, "/headers/X-Token\n/[key]"),
        ({"Webhook-Signature": "v1,forged"}, "/headers/Webhook-Signature/[key]"),
        ({"Content-Type": "text/plain"}, "/headers/Content-Type/[key]"),
        ({"Host": "internal"}, "/headers/Host/[key]"),
        ({f"X-{n}": "v" for n in range(21)}, "/headers"),
    ],
)
async def test_bad_custom_headers_get_422_pointing_at_the_header(
    tenant: Client, headers: dict[str, str], field: str
):
    answer = await tenant.post(
        "/webhooks/endpoints", {"url": "http://127.0.0.1:9/hooks", "headers": headers}
    )

    assert answer.status == 422, answer
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["code"] == "validation" and answer.body["status"] == 422
    assert [e["field"] for e in answer.body["errors"]] == [field]
    assert all(e["in"] == "body" and e["message"] for e in answer.body["errors"])
    listed = await tenant.get("/webhooks/endpoints")
    assert listed.body["pagination"]["total_count"] == 0, "nothing was stored"


async def test_header_values_are_sent_unchanged_and_read_back_masked(tenant: Client):
    hook = await started()
    try:
        headers = {"Authorization": "Bearer s3cret-value", "X-Shop": "shop 42"}
        created = await register(tenant, hook.url, event_types=["stock.changed"], headers=headers)
        path = f"/webhooks/endpoints/{created['id']}"
        assert created["headers"] == {"Authorization": "***", "X-Shop": "***"}
        got = await tenant.get(path)
        assert got.body["headers"] == {"Authorization": "***", "X-Shop": "***"}
        listed = await tenant.get("/webhooks/endpoints")
        assert [e["headers"] for e in listed.body["data"]] == [
            {"Authorization": "***", "X-Shop": "***"}
        ]
        assert "s3cret-value" not in str(got.body) + str(listed.body)

        record = await StockRecord.create(tenant, quantity=1)
        await received_count(hook, 1)
        assert hook.received[0].headers["authorization"] == "Bearer s3cret-value"
        assert hook.received[0].headers["x-shop"] == "shop 42"

        # A masked value written back keeps what is stored; a new value replaces it.
        patched = await tenant.call(
            "PATCH", path, json={"headers": {"Authorization": "***", "X-Shop": "shop 43"}}
        )
        assert patched.status == 200, patched
        assert patched.body["headers"] == {"Authorization": "***", "X-Shop": "***"}
        await record.restock(1)
        await received_count(hook, 2)
        assert hook.received[-1].headers["authorization"] == "Bearer s3cret-value"
        assert hook.received[-1].headers["x-shop"] == "shop 43"

        unknown = await tenant.call("PATCH", path, json={"headers": {"X-New": "***"}})
        assert unknown.status == 422, unknown
        assert unknown.body["errors"][0]["field"] == "/headers/X-New"
        assert (await tenant.get(path)).body["version"] == patched.body["version"]
    finally:
        await hook.stop()
