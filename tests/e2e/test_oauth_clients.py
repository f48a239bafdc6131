"""OAuth2 client credentials and a tenant's own keys on the whole platform: a token reaches
the services as its tenant, with its client's scopes, until it expires or is revoked."""

import base64
from urllib.parse import urlencode

import aiohttp

from tests.e2e.stocking import stocked_product
from tests.support import Answer, Client

FORM = "application/x-www-form-urlencoded"


async def token(tenant: Client, client_id: str, secret: str, **fields: str) -> Answer:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    anonymous = Client(tenant.session, tenant.base_url, None)
    return await anonymous.call(
        "POST",
        "/oauth/token",
        data=urlencode({"grant_type": "client_credentials", **fields}).encode(),
        headers={"Content-Type": FORM, "Authorization": f"Basic {basic}"},
    )


async def test_a_token_reads_the_tenants_stock_with_the_clients_scopes_until_revoked(
    tenant: Client, other_tenant: Client, http: aiohttp.ClientSession
):
    sku, _, _ = await stocked_product(tenant, quantity=4)
    created = await tenant.post(
        "/oauth/clients", {"name": "warehouse", "scopes": ["stock:read", "sales:read"]}
    )
    assert created.status == 201, created
    client_id, secret = created.body["client_id"], created.body["client_secret"]

    issued = await token(tenant, client_id, secret, scope="stock:read")
    assert issued.status == 200, issued
    assert issued.body["token_type"] == "Bearer" and issued.body["scope"] == "stock:read"
    assert issued.body["expires_in"] == 3600
    as_client = Client(http, tenant.base_url, issued.body["access_token"])

    records = await as_client.get("/stock/stock-records", sku=sku)
    assert records.status == 200, records
    assert [r["sku"] for r in records.body["data"]] == [sku]
    assert records.body["data"][0]["quantity"] == 4
    assert (await other_tenant.get("/stock/stock-records", sku=sku)).body["data"] == []
    # the scope it did not ask for, and one the client never had
    assert (await as_client.get("/sales")).problem_code == "no_permission"
    written = await as_client.post("/products", {"sku": "X-1", "name": "x"})
    assert written.status == 403 and written.problem_code == "no_permission"

    wrong = await token(tenant, client_id, secret + "x")
    assert wrong.status == 401 and wrong.body["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="fulfil"'

    revoked = await tenant.call("DELETE", f"/oauth/clients/{client_id}")
    assert revoked.status == 204, revoked
    refused = await as_client.get("/stock/stock-records", sku=sku)
    assert refused.status == 401 and refused.problem_code == "invalid_token"
    again = await token(tenant, client_id, secret)
    assert again.status == 401 and again.body["error"] == "invalid_client"


async def test_a_tenant_names_and_revokes_its_own_keys(tenant: Client, http: aiohttp.ClientSession):
    created = await tenant.post("/api-keys", {"name": "erp", "scopes": ["sales:read"]})
    assert created.status == 201, created
    assert created.headers["Cache-Control"] == "no-store"
    key = Client(http, tenant.base_url, created.body["api_key"])
    assert (await key.get("/sales")).status == 200

    listing = await tenant.get("/api-keys")
    assert listing.status == 200
    [listed] = [k for k in listing.body["data"] if k["id"] == created.body["id"]]
    assert listed["name"] == "erp" and listed["scopes"] == ["sales:read"]
    assert "api_key" not in listed and listed["revoked_at"] is None

    revoked = await tenant.call("DELETE", f"/api-keys/{created.body['id']}")
    assert revoked.status == 204
    refused = await key.get("/sales")
    assert refused.status == 401 and refused.problem_code == "invalid_token"
    # a key without `admin` cannot manage keys
    plain = await tenant.post("/api-keys", {"name": "plain", "scopes": ["sales:read"]})
    as_plain = Client(http, tenant.base_url, plain.body["api_key"])
    denied = await as_plain.post("/api-keys", {"name": "escalate", "scopes": ["admin"]})
    assert denied.status == 403 and denied.problem_code == "no_permission"
