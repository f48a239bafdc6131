-- Bundles (docs/api-guide.md, "Bundles"): a product may be sold as a set of others.
--   components: [{"sku": ..., "quantity": N}] or null (not a bundle); a sale line of a
--     bundle that is not assembled reserves its components, never a record of its own;
--   assembled: the bundle is built into stock of its own (`POST /stock/builds`) and then
--     reserved like any product.
ALTER TABLE stock.products
    ADD COLUMN components jsonb,
    ADD COLUMN assembled boolean NOT NULL DEFAULT false;
-- Bundles are found by tenant when a sale is expanded (few rows: only bundles).
CREATE INDEX products_bundles ON stock.products (tenant_id, sku) WHERE components IS NOT NULL;

-- A build's ledger pair (components down, the assembled bundle up, or back) has reason
-- `build` and one reference, the build's id. The reasons other changes of this release add
-- are listed too, so the check holds whatever order their migrations run in.
ALTER TABLE stock.movements DROP CONSTRAINT IF EXISTS movements_reason_check;
ALTER TABLE stock.movements ADD CONSTRAINT movements_reason_check CHECK (reason IN
    ('audit', 'restock', 'loss', 'adjustment', 'reservation', 'release', 'commit', 'transfer',
     'receipt', 'return', 'discard', 'build'));
