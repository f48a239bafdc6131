-- Each outbox row keeps its event's type (readable without decoding the payload) and the W3C
-- `traceparent` of what caused it, which the relay sends as a Kafka record header
-- (fulfilkit.tracing). Parked rows keep both, so a requeued row goes out as it would have.
ALTER TABLE {schema}.outbox ADD COLUMN event_type text, ADD COLUMN traceparent text;
ALTER TABLE {schema}.outbox_parked ADD COLUMN event_type text, ADD COLUMN traceparent text;
