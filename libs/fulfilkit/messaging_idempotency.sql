-- Requests made once per (tenant, Idempotency-Key): the key, the request's fingerprint and the
-- answer, written in the transaction of the effect itself (fulfilkit.idempotency).
CREATE TABLE IF NOT EXISTS {schema}.idempotent_requests (
    tenant_id   uuid NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,
    status_code integer,
    headers     jsonb,
    body        bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS idempotent_requests_by_age
    ON {schema}.idempotent_requests USING brin (created_at);
