-- Events a consumer gave up on (also sent to `<topic>.dlq`), kept for an operator to list,
-- replay or purge (`fulfilkit.deadletters`). `event_id` is null when the record was not a
-- readable event; `replayable` is false for those and for foreign events, which would be
-- refused again. A row is never updated but by a replay (`state`, `replayed_at`).
CREATE TABLE {schema}.dead_letters (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    event_id        uuid,
    event_type      text,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    key             bytea,
    value           bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '[]',
    error           text        NOT NULL,
    replayable      boolean     NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    state           text        NOT NULL DEFAULT 'dead'
                    CHECK (state IN ('dead', 'replayed')),
    replayed_at     timestamptz,
    -- A record consumed again (after a crash before its offset was committed) is one row
    UNIQUE (consumer, topic, kafka_partition, kafka_offset)
);
CREATE INDEX dead_letters_by_age ON {schema}.dead_letters (failed_at);
