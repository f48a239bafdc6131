-- Keys a tenant makes for itself carry a name; keys the operator made have none.
ALTER TABLE gateway.api_keys ADD COLUMN name text;

-- OAuth2 clients (client credentials grant). Only the SHA-256 of the secret is kept.
CREATE TABLE gateway.oauth_clients (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES gateway.tenants (id),
    name          text NOT NULL,
    secret_hash   bytea NOT NULL,
    secret_prefix text NOT NULL,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX oauth_clients_tenant_idx ON gateway.oauth_clients (tenant_id);

-- Access tokens issued to clients: a bearer credential like an API key, until expires_at.
-- A revoked client's tokens are deleted with the revocation.
CREATE TABLE gateway.access_tokens (
    token_hash  bytea PRIMARY KEY,
    client_id   uuid NOT NULL REFERENCES gateway.oauth_clients (id) ON DELETE CASCADE,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX access_tokens_client_idx ON gateway.access_tokens (client_id);
CREATE INDEX access_tokens_expires_idx ON gateway.access_tokens (expires_at);
