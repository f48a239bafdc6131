-- A sale is claimed for shipping once and a cancel is final, so a sale has exactly one
-- fulfillment ever: a canceled one is never replaced.
DROP INDEX fulfilment.one_live_fulfillment_per_sale;
CREATE UNIQUE INDEX one_fulfillment_per_sale ON fulfilment.fulfillments (tenant_id, sale);
