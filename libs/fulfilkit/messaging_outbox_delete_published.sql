-- The relay deletes the rows Kafka acknowledged instead of marking them published, so the
-- outbox holds only what is still to be sent: small, cached, nothing to prune.
DELETE FROM {schema}.outbox WHERE published_at IS NOT NULL;
DROP INDEX IF EXISTS {schema}.outbox_unpublished;
ALTER TABLE {schema}.outbox DROP COLUMN published_at;
