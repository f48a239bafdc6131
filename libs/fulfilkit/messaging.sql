-- Shared by every service, created in its own schema: the transactional outbox and the
-- idempotent-consumer inbox as first created. The messaging_*.sql scripts after it (in the
-- order of `fulfilkit.db.SHARED_SCRIPTS`) change them and add the other shared tables.
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
