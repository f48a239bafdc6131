-- Shared by every service, created in its own schema: the transactional outbox,
-- the idempotent-consumer inbox, and stored responses for Idempotency-Key.
CREATE TABLE {schema}.outbox (
    seq          bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON {schema}.outbox (seq) WHERE published_at IS NULL;

CREATE TABLE {schema}.inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    outcome      text        NOT NULL DEFAULT 'applied',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
