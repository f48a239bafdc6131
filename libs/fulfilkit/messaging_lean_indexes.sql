-- Indexes every event pays for, kept to what is used. The outbox's unique event id guarded
-- nothing (ids are new UUIDs; consumers deduplicate through their inbox) and cost a random
-- B-tree insert per event. The inbox is written in time order and pruned by age, which a
-- BRIN index answers at a fraction of a B-tree's upkeep.
ALTER TABLE {schema}.outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
DROP INDEX IF EXISTS {schema}.inbox_by_age;
CREATE INDEX inbox_by_age ON {schema}.inbox USING brin (received_at);
