-- stock.low fires once each time a record falls to or below its product's min_level.
ALTER TABLE stock.stock_records ADD COLUMN low boolean NOT NULL DEFAULT false;

-- Sales whose reservation failed wait here, oldest first, per location.
CREATE TABLE stock.backorders (
    seq         bigserial   PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    sale        uuid        NOT NULL,
    sale_id     text        NOT NULL,
    location_id text        NOT NULL,
    lines       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sale)
);
CREATE INDEX backorders_by_location ON stock.backorders (tenant_id, location_id, seq);

-- A stock increase at a location asks the backorder worker to retry that location's queue.
CREATE TABLE stock.backorder_wakeups (
    tenant_id   uuid NOT NULL,
    location_id text NOT NULL,
    PRIMARY KEY (tenant_id, location_id)
);

CREATE INDEX reservations_by_status ON stock.reservations (tenant_id, status);
CREATE INDEX movements_by_reference ON stock.movements (tenant_id, reference);
