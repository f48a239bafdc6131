-- Order edits (docs/api-guide.md, "Editing a sale"): the version of the sale's last change
-- that asked stock for a new reservation (its creation, or an edit of its lines or
-- location). A reservation outcome answering an older version is stale and changes nothing.
ALTER TABLE orders.sales ADD COLUMN reservation_version integer NOT NULL DEFAULT 1;
