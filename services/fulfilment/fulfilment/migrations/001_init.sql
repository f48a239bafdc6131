CREATE TABLE fulfilment.fulfillments (
    id                uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    fulfillment_id    text        NOT NULL UNIQUE,
    sale              uuid        NOT NULL,
    sale_id           text        NOT NULL,
    location          text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('waiting_for_picking', 'picking',
        'packed', 'shipped', 'delivered', 'canceled')),
    shipping_provider text        NOT NULL,
    tracking_number   text        NOT NULL,
    is_bulky          boolean     NOT NULL DEFAULT false,
    version           integer     NOT NULL DEFAULT 1,
    date_created      timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shipping_provider, tracking_number)
);
-- A sale has at most one live fulfillment.
CREATE UNIQUE INDEX one_live_fulfillment_per_sale
    ON fulfilment.fulfillments (tenant_id, sale) WHERE status <> 'canceled';
CREATE INDEX fulfillments_by_sale_id ON fulfilment.fulfillments (tenant_id, sale_id);

CREATE SEQUENCE fulfilment.tracking_numbers START 1000001;
