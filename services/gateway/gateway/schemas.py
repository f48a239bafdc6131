"""The request and response bodies of the gateway's own routes: the admin API, a tenant's
own keys and OAuth2 clients, and the token endpoint."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Header
from pydantic import BaseModel, Field, StringConstraints

from fulfilkit.models import Text
from gateway.domain import (
    DEFAULT_SCOPES,
    AccessToken,
    ApiKey,
    IssuedClient,
    IssuedKey,
    OAuthClient,
    ScopeName,
    TenantSummary,
    TenantWithKey,
)

TenantName = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NewTenant(BaseModel):
    name: TenantName
    scopes: list[ScopeName] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        min_length=1,
        description="The first key's scopes; every scope but `admin` when left out.",
    )


# Declared for the OpenAPI and checked like `idempotency.check_key`; `idempotency.once` reads it.
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="A retry with the same key (per tenant) creates nothing again.",
    ),
]

# Stripped before its length is checked (a blank name is refused), then checked as `Text`.
CredentialName = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)],
    *Text.__metadata__,
]


class NewKey(BaseModel):
    scopes: list[ScopeName] = Field(min_length=1)
    name: CredentialName | None = None


class NewNamedKey(BaseModel):
    """A key a tenant makes for itself: a name to tell it by, and its scopes."""

    name: CredentialName
    scopes: list[ScopeName] = Field(min_length=1)


class NewClient(BaseModel):
    """An OAuth2 client: a name to tell it by, and the scopes its tokens may have."""

    name: CredentialName
    scopes: list[ScopeName] = Field(min_length=1)


class TenantOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class KeyCounts(BaseModel):
    active: int = Field(description="Keys not revoked.")
    revoked: int


class TenantDetail(TenantOut):
    keys: KeyCounts

    @classmethod
    def of(cls, found: TenantSummary) -> "TenantDetail":
        tenant = found.tenant
        return cls(
            id=tenant.id,
            name=tenant.name,
            created_at=tenant.created_at,
            keys=KeyCounts(active=found.active_keys, revoked=found.revoked_keys),
        )


class CreatedTenant(BaseModel):
    tenant: TenantOut
    key_id: UUID
    api_key: str = Field(description="Shown only in this response; store it safely.")
    scopes: list[str]

    @classmethod
    def of(cls, created: TenantWithKey) -> "CreatedTenant":
        tenant, key = created.tenant, created.first_key
        return cls(
            tenant=TenantOut(id=tenant.id, name=tenant.name, created_at=tenant.created_at),
            key_id=key.key.id,
            api_key=key.secret,
            scopes=list(key.key.scopes),
        )


class KeyOut(BaseModel):
    id: UUID
    tenant_id: UUID
    name: str | None = Field(description="None for keys the operator made without one.")
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "KeyOut":
        return cls(
            id=key.id,
            tenant_id=key.tenant_id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class CreatedKey(KeyOut):
    api_key: str = Field(description="Shown only in this response; store it safely.")

    @classmethod
    def issued(cls, issued: IssuedKey) -> "CreatedKey":
        return cls(**KeyOut.of(issued.key).model_dump(), api_key=issued.secret)


class KeyList(BaseModel):
    data: list[KeyOut]


class PageInfo(BaseModel):
    total_count: int
    offset: int
    limit: int


class KeyPage(BaseModel):
    data: list[KeyOut]
    pagination: PageInfo


class TenantPage(BaseModel):
    data: list[TenantDetail]
    pagination: PageInfo


class ClientOut(BaseModel):
    client_id: UUID = Field(description="The `client_id` to ask for tokens with.")
    tenant_id: UUID
    name: str
    secret_prefix: str = Field(description="The secret's first characters, to recognise it by.")
    scopes: list[str] = Field(description="The scopes its access tokens may have.")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, client: OAuthClient) -> "ClientOut":
        return cls(
            client_id=client.id,
            tenant_id=client.tenant_id,
            name=client.name,
            secret_prefix=client.secret_prefix,
            scopes=list(client.scopes),
            created_at=client.created_at,
            revoked_at=client.revoked_at,
        )


class CreatedClient(ClientOut):
    client_secret: str = Field(description="Shown only in this response; store it safely.")

    @classmethod
    def issued(cls, issued: IssuedClient) -> "CreatedClient":
        return cls(**ClientOut.of(issued.client).model_dump(), client_secret=issued.secret)


class ClientPage(BaseModel):
    data: list[ClientOut]
    pagination: PageInfo


class TokenOut(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str = Field(description="Send it as `Authorization: Bearer <token>`.")
    token_type: str = Field(description="Always `Bearer`.")
    expires_in: int = Field(description="Seconds from now until the token stops working.")
    scope: str = Field(description="The token's scopes, space-delimited.")

    @classmethod
    def of(cls, token: AccessToken) -> "TokenOut":
        return cls(
            access_token=token.token,
            token_type="Bearer",
            expires_in=token.expires_in,
            scope=" ".join(token.scopes),
        )


class OAuthErrorOut(BaseModel):
    """RFC 6749 section 5.2."""

    error: str = Field(
        description="`invalid_request`, `invalid_client`, `invalid_scope`,"
        " `unsupported_grant_type` or `too_many_requests`."
    )
    error_description: str


# --- the operator's overview and the stock integrity check (admin API) -------------------


class ConsumerLagOut(BaseModel):
    group: str = Field(description="The consumer group (the service's name).")
    topic: str
    lag: int = Field(description="Records not yet fetched, summed over the partitions.")


class DeadLetterCounts(BaseModel):
    dead: int = Field(description="Waiting for a replay or a purge.")
    replayed: int


class ServiceOverview(BaseModel):
    service: str
    status: Literal["ready", "not_ready", "unreachable"] = Field(
        description="`unreachable`: no answer within the bound, or no usable one; the other"
        " fields are then null."
    )
    checks: dict[str, bool] | None = Field(
        description="What `/ready` checks: database, broker, each loop."
    )
    consumer_lag: list[ConsumerLagOut] | None
    outbox_backlog_rows: int | None = Field(description="Outbox rows not yet published.")
    dead_letters: DeadLetterCounts | None
    error: str | None = Field(default=None, description="Why it is `unreachable`.")


class OverviewOut(BaseModel):
    services: list[ServiceOverview]


class DiscrepancyOut(BaseModel):
    stock_record_id: UUID
    location_id: str
    sku: str
    check: str
    recorded: int
    expected: int


class IntegrityReportOut(BaseModel):
    ok: bool = Field(description="True when nothing disagrees.")
    records_checked: int
    discrepancies: list[DiscrepancyOut]
    repaired: int = Field(
        description="Records whose `reserved` a rebuild set right (0 on a check)."
    )
