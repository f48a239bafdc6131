-- Outbox rows Kafka refused for good (too large, say), moved aside by the relay so that the
-- rows behind them flow on. Listed by `python -m fulfilkit.parked`; nothing reads them else.
CREATE TABLE {schema}.outbox_parked (
    seq        bigint      PRIMARY KEY,
    event_id   uuid        NOT NULL,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL
);
