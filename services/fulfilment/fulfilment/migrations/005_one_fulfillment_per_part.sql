-- A sale split across locations ships one part from each: it has one fulfillment per
-- (sale, location) instead of one per sale. A sale is still claimed once and a cancel is
-- still final, so each part has exactly one fulfillment ever. `part` orders a sale's
-- fulfillments as its reservation lists its locations (0: the reservation's own location,
-- which holds most of its units; then the others); every fulfillment before this was its
-- sale's only part.
ALTER TABLE fulfilment.fulfillments ADD COLUMN part smallint NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX one_fulfillment_per_part
    ON fulfilment.fulfillments (tenant_id, sale, location);
DROP INDEX fulfilment.one_fulfillment_per_sale;
