-- Lets the inbox pruner find old event ids without reading the whole table.
CREATE INDEX IF NOT EXISTS inbox_by_age ON {schema}.inbox (received_at);
