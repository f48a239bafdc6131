-- Stock policies per product, applied when a sale is reserved:
--   backorders: "allow" (the default), "deny", or {"cap": N} (at most N units of the
--     product wait in a location's backorder queue);
--   out_of_stock_threshold: units held back at each location (sellable = available - it);
--   preorder: {expected_at, lead_time_days} or null, shown on a backordered sale's issues;
--   infinite: never reserved or depleted (digital goods, services).
ALTER TABLE stock.products
    ADD COLUMN backorders jsonb NOT NULL DEFAULT '"allow"',
    ADD COLUMN out_of_stock_threshold integer NOT NULL DEFAULT 0
        CHECK (out_of_stock_threshold >= 0),
    ADD COLUMN preorder jsonb,
    ADD COLUMN infinite boolean NOT NULL DEFAULT false;
