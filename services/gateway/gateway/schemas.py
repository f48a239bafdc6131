"""The admin API's request and response bodies."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from fulfilkit.models import Text
from gateway.domain import DEFAULT_SCOPES, ApiKey, IssuedKey, ScopeName, TenantWithKey

TenantName = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NewTenant(BaseModel):
    name: TenantName
    scopes: list[ScopeName] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        min_length=1,
        description="The first key's scopes; every scope but `admin` when left out.",
    )


class NewKey(BaseModel):
    scopes: list[ScopeName] = Field(min_length=1)


class TenantOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


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
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "KeyOut":
        return cls(
            id=key.id,
            tenant_id=key.tenant_id,
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
