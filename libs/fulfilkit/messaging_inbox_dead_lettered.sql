-- `/metrics` counts the inbox's dead letters at each scrape: a small partial index keeps that
-- from reading the whole inbox (which holds every event applied for 30 days).
CREATE INDEX IF NOT EXISTS inbox_dead_lettered ON {schema}.inbox (consumer)
    WHERE outcome = 'dead_lettered';
