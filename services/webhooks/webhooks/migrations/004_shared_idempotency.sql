-- Endpoint creation and secret rotation are keyed through fulfilkit.idempotency, in the shared
-- `webhooks.idempotent_requests`, like every keyed write. The keys stored here before go with
-- their table: a retry of a request made before this migration runs as a new request.
-- `endpoints.secret_generation` stays: a replay still tells by it whether the secret it would
-- answer is the one its rotation produced.

DROP TABLE webhooks.idempotency_keys;
