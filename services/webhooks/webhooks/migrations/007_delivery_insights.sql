-- What the delivery log and endpoint health show (docs/api-guide.md, "Webhooks").
--
-- Deliveries across a tenant's endpoints, newest first, and those one sale (its `subject`)
-- caused, without visiting every endpoint's index.
CREATE INDEX deliveries_by_tenant ON webhooks.deliveries (tenant_id, created_at DESC, id);
CREATE INDEX deliveries_by_tenant_subject
    ON webhooks.deliveries (tenant_id, subject, created_at DESC, id);

-- The headers an attempt sent, as recorded: without `webhook-signature`, custom header
-- values masked. NULL for attempts made before this column existed.
ALTER TABLE webhooks.attempts ADD COLUMN request_headers jsonb;

-- Endpoint health as a rolling table: per endpoint and hour, the deliveries that finished
-- (succeeded or finally failed) and the hour's last failed attempt. Written with the
-- outcomes, read for the last 24 hours (at most 25 rows per endpoint), pruned after 2 days.
CREATE TABLE webhooks.endpoint_stats (
    endpoint_id          uuid        NOT NULL REFERENCES webhooks.endpoints (id) ON DELETE CASCADE,
    hour                 timestamptz NOT NULL,
    succeeded            integer     NOT NULL DEFAULT 0,
    failed               integer     NOT NULL DEFAULT 0,
    last_failure_at      timestamptz,
    last_failure_status  integer,
    last_failure_error   text,
    PRIMARY KEY (endpoint_id, hour)
);
CREATE INDEX endpoint_stats_by_hour ON webhooks.endpoint_stats (hour);
