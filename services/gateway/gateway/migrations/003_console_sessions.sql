-- Console sessions: the cookie carries a random id, only its SHA-256 is kept here, with what
-- the session needs to act: the API key it signed in with (checked against revocation on
-- every request) or, for the operator, a fingerprint of the admin token (rotating the token
-- ends the session). Idle and absolute expiries; expired rows are pruned.
CREATE TABLE gateway.console_sessions (
    id_hash           bytea PRIMARY KEY,
    csrf_token        text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('tenant', 'admin')),
    key_id            uuid REFERENCES gateway.api_keys (id) ON DELETE CASCADE,
    tenant_id         uuid REFERENCES gateway.tenants (id) ON DELETE CASCADE,
    scopes            text[] NOT NULL DEFAULT '{}',
    admin_fingerprint bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    CHECK ((kind = 'tenant') = (key_id IS NOT NULL AND tenant_id IS NOT NULL)),
    CHECK ((kind = 'admin') = (admin_fingerprint IS NOT NULL))
);
CREATE INDEX console_sessions_expires_idx ON gateway.console_sessions (expires_at);
CREATE INDEX console_sessions_key_idx ON gateway.console_sessions (key_id);
