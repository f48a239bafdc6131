CREATE TABLE gateway.tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a key is kept; `prefix` is what people see in listings and logs.
CREATE TABLE gateway.api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES gateway.tenants (id),
    key_hash    bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON gateway.api_keys (tenant_id);

-- A row with a NULL status_code is a request still in progress.
CREATE TABLE gateway.idempotency_keys (
    tenant_id    uuid NOT NULL,
    key          text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    body_sha256  bytea NOT NULL,
    status_code  integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON gateway.idempotency_keys (created_at);
