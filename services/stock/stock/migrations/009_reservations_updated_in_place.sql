-- A reservation is inserted once and settled once (committed when its sale ships, or
-- released). Settling changed `status`, which `reservations_by_status` indexes, so every
-- settle added an entry to each of the table's three indexes. Nothing reads reservations
-- by status alone: the integrity check reads a tenant's (through the unique index on
-- tenant and sale, as it reads the tenant's whole ledger anyway). Without that index, and
-- with room left on the page, the settled row version stays on its page (a HOT update).
DROP INDEX stock.reservations_by_status;
ALTER TABLE stock.reservations SET (fillfactor = 75);
