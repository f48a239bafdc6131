-- Routing a sale that names no location (docs/api-guide.md, "Routing and split shipments").
--   is_default: the tenant's default location, where a routed sale that no location can
--     fill waits for stock; at most one per tenant (setting one unsets the other in the
--     same transaction);
--   routing_priority: lower first; ties go to the default, then by location_id.
ALTER TABLE stock.locations
    ADD COLUMN is_default boolean NOT NULL DEFAULT false,
    ADD COLUMN routing_priority integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX locations_one_default ON stock.locations (tenant_id) WHERE is_default;

-- A split sale's one reservation holds lines at several locations, so one SKU may appear
-- twice in it (once per location): a line is keyed by its stock record.
ALTER TABLE stock.reservation_lines DROP CONSTRAINT reservation_lines_pkey;
ALTER TABLE stock.reservation_lines ADD PRIMARY KEY (reservation_id, stock_record_id);

-- The sale version a reservation (or a queued sale) answers, published with its outcome.
ALTER TABLE stock.reservations ADD COLUMN sale_version integer;

-- A routed sale waits in one location's queue (the default's) but is routed again on each
-- retry, over every location of its tenant, split or not as the sale allows.
ALTER TABLE stock.backorders
    ADD COLUMN routed boolean NOT NULL DEFAULT false,
    ADD COLUMN allow_split boolean NOT NULL DEFAULT true,
    ADD COLUMN sale_version integer;
-- A stock rise anywhere wakes the queues holding a tenant's routed sales: found by tenant.
CREATE INDEX backorders_routed ON stock.backorders (tenant_id, location_id) WHERE routed;
