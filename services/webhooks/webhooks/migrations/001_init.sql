-- Endpoints a tenant registered, the deliveries queued for them, and every attempt.

CREATE TABLE webhooks.endpoints (
    id                         uuid        PRIMARY KEY,
    tenant_id                  uuid        NOT NULL,
    url                        text        NOT NULL,
    description                text        NOT NULL DEFAULT '',
    event_types                text[]      NOT NULL CHECK (cardinality(event_types) > 0),
    headers                    jsonb       NOT NULL DEFAULT '{}',
    enabled                    boolean     NOT NULL DEFAULT true,
    disabled_reason            text,
    secret                     text        NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    failing_since              timestamptz,
    version                    integer     NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_by_tenant ON webhooks.endpoints (tenant_id, created_at, id);
CREATE INDEX endpoints_enabled_by_tenant ON webhooks.endpoints (tenant_id) WHERE enabled;

-- One row per (event, endpoint). `next_attempt_at` is when a pending delivery is due (or,
-- while a dispatcher holds it, when its lease ends); NULL while the endpoint is disabled.
CREATE TABLE webhooks.deliveries (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid        NOT NULL,
    endpoint_id      uuid        NOT NULL REFERENCES webhooks.endpoints (id) ON DELETE CASCADE,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    webhook_id       text        NOT NULL,
    payload          bytea       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count    integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    UNIQUE (event_id, endpoint_id),
    CHECK (status = 'pending' OR next_attempt_at IS NULL)
);
CREATE INDEX deliveries_due ON webhooks.deliveries (next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_endpoint ON webhooks.deliveries (endpoint_id, created_at DESC, id);
CREATE INDEX deliveries_pending_by_endpoint ON webhooks.deliveries (endpoint_id)
    WHERE status = 'pending';

CREATE TABLE webhooks.attempts (
    id            bigserial   PRIMARY KEY,
    delivery_id   uuid        NOT NULL REFERENCES webhooks.deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer     NOT NULL,
    response_body text,
    error         text
);
CREATE INDEX attempts_by_delivery ON webhooks.attempts (delivery_id, id);
