-- Which SKUs each tenant's catalogue holds, copied from stock's `product.created` events,
-- so that a sale naming a SKU outside the catalogue is refused without asking stock.
-- Products are never deleted, so the copy only grows.
CREATE TABLE orders.catalogue (
    tenant_id uuid        NOT NULL,
    sku       text        NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);
