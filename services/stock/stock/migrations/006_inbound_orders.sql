-- Inbound orders (docs/api-guide.md, "Inbound orders"): deliveries expected from a
-- supplier at a location, received against in receipts. Statuses: draft, open, receiving,
-- received, closed (by hand, with close_reason), canceled.
CREATE TABLE stock.inbound_orders (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    reference    text        NOT NULL,
    supplier     text,
    location_id  text        NOT NULL,
    expected_at  timestamptz,
    urgent       boolean     NOT NULL DEFAULT false,
    instructions text,
    properties   jsonb,
    status       text        NOT NULL CHECK (status IN
        ('draft', 'open', 'receiving', 'received', 'closed', 'canceled')),
    close_reason text,
    version      integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, reference),
    FOREIGN KEY (tenant_id, location_id) REFERENCES stock.locations (tenant_id, location_id)
);
CREATE INDEX inbound_orders_by_status ON stock.inbound_orders (tenant_id, status, expected_at);
CREATE INDEX inbound_orders_by_location ON stock.inbound_orders (tenant_id, location_id, status);

-- Expected units per SKU, and how many of them the receipts brought in so far.
CREATE TABLE stock.inbound_order_lines (
    inbound_order_id uuid    NOT NULL REFERENCES stock.inbound_orders (id) ON DELETE CASCADE,
    position         integer NOT NULL,
    tenant_id        uuid    NOT NULL,
    sku              text    NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    received         integer NOT NULL DEFAULT 0 CHECK (received >= 0),
    PRIMARY KEY (inbound_order_id, sku),
    FOREIGN KEY (tenant_id, sku) REFERENCES stock.products (tenant_id, sku)
);
CREATE INDEX inbound_order_lines_by_sku ON stock.inbound_order_lines (tenant_id, sku);

-- Each receipt: what came in, with a reason where it differs from what was still expected.
-- Its id is the `reference` of the ledger rows (reason `receipt`) it wrote.
CREATE TABLE stock.inbound_receipts (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    inbound_order_id uuid        NOT NULL REFERENCES stock.inbound_orders (id),
    lines            jsonb       NOT NULL,
    actor            text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbound_receipts_by_order ON stock.inbound_receipts (inbound_order_id, created_at);

-- The ledger's new reason: units received against an inbound order.
ALTER TABLE stock.movements DROP CONSTRAINT movements_reason_check;
ALTER TABLE stock.movements ADD CONSTRAINT movements_reason_check CHECK (reason IN
    ('audit', 'restock', 'loss', 'adjustment', 'reservation', 'release', 'commit', 'transfer',
     'receipt'));
