-- A sale's row is rewritten as events update its reservation and fulfillments without
-- changing any indexed column; free room on its page lets PostgreSQL do that in place
-- (a HOT update) instead of adding an entry to each of the table's four indexes.
ALTER TABLE orders.sales SET (fillfactor = 75);
