-- Idempotent creation and secret rotation: the key is written in the transaction of its
-- effect, naming what it produced (never a secret: the retry reads the endpoint's own,
-- encrypted one). `secret_generation` counts rotations, so a retry can tell whether the
-- secret it would return is still the one its rotation produced.

ALTER TABLE webhooks.endpoints ADD COLUMN secret_generation integer NOT NULL DEFAULT 1;

CREATE TABLE webhooks.idempotency_keys (
    tenant_id         uuid        NOT NULL,
    key               text        NOT NULL,
    operation         text        NOT NULL CHECK (operation IN ('create', 'rotate')),
    request_sha256    bytea       NOT NULL,
    endpoint_id       uuid        NOT NULL,
    secret_generation integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_by_age ON webhooks.idempotency_keys (created_at);
