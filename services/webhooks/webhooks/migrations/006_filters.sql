-- Endpoint filters on the target status: {"sale.status_changed": {"status": ["shipped"]}}.
-- An event of a filtered type becomes a delivery only when its `data.status` is listed; `{}`
-- (every endpoint before this migration) filters nothing.
ALTER TABLE webhooks.endpoints ADD COLUMN filters jsonb NOT NULL DEFAULT '{}';
