-- A sale's optional details (docs/api-guide.md, "Order details"). `ship_by` and
-- `deliver_by` are columns of their own so that sales can be listed by them; the rest is
-- only ever read with the sale.
ALTER TABLE orders.sales
    ADD COLUMN priority         text NOT NULL DEFAULT 'normal'
        CHECK (priority IN ('normal', 'urgent')),
    ADD COLUMN instructions     text,
    ADD COLUMN ship_by          timestamptz,
    ADD COLUMN deliver_by       timestamptz,
    ADD COLUMN invoice_value    jsonb,
    ADD COLUMN cash_on_delivery jsonb,
    ADD COLUMN properties       jsonb;
-- `GET /sales?priority=urgent` and `ship_by_before`: the few urgent or dated sales of a
-- tenant among many, found without reading the others.
CREATE INDEX sales_by_priority ON orders.sales (tenant_id, priority, created_at)
    WHERE priority <> 'normal';
CREATE INDEX sales_by_ship_by ON orders.sales (tenant_id, ship_by) WHERE ship_by IS NOT NULL;
