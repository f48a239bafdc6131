-- Each delivery keeps the W3C `traceparent` of the event that caused it: every attempt sends
-- it (as a child span's) in the `traceparent` request header (fulfilkit.tracing).
ALTER TABLE webhooks.deliveries ADD COLUMN traceparent text;
