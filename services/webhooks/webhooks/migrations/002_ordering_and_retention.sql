-- Ordered delivery per subject, fair claiming per endpoint, and pruning of old deliveries.

ALTER TABLE webhooks.endpoints ADD COLUMN ordered boolean NOT NULL DEFAULT false;

-- `subject` is the CloudEvent subject (one sale, one stock record); `occurred_at` the event's
-- time and `seq` the order the service received it in: together they order one subject.
ALTER TABLE webhooks.deliveries
    ADD COLUMN seq         bigserial,
    ADD COLUMN subject     text        NOT NULL DEFAULT '',
    ADD COLUMN occurred_at timestamptz;
UPDATE webhooks.deliveries SET occurred_at = created_at;
ALTER TABLE webhooks.deliveries
    ALTER COLUMN occurred_at SET NOT NULL,
    ALTER COLUMN occurred_at SET DEFAULT now();

-- The dispatcher walks the endpoints that have pending deliveries and takes each one's due
-- deliveries, oldest first: one index serves both, so a busy endpoint cannot crowd out others.
DROP INDEX webhooks.deliveries_due;
DROP INDEX webhooks.deliveries_pending_by_endpoint;
CREATE INDEX deliveries_due_by_endpoint ON webhooks.deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';

-- The head of a subject: its earliest pending delivery (for endpoints that ask for order).
CREATE INDEX deliveries_pending_by_subject
    ON webhooks.deliveries (endpoint_id, subject, occurred_at, seq) WHERE status = 'pending';

-- Retention: finished deliveries (and their attempts, by cascade) older than the limit go.
CREATE INDEX deliveries_finished ON webhooks.deliveries (completed_at) WHERE status <> 'pending';
CREATE INDEX IF NOT EXISTS inbox_by_age ON webhooks.inbox (received_at);

-- Deliveries are a queue: every row is updated two or three times within seconds. Vacuum and
-- analyze it often so dead index entries do not pile up ahead of the due ones.
ALTER TABLE webhooks.deliveries SET (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
