CREATE TABLE orders.sales (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    sale_id          text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('awaiting_stock', 'pending',
        'backordered', 'in_fulfillment', 'shipped', 'delivered', 'canceled')),
    version          integer     NOT NULL DEFAULT 1,
    shop             jsonb       NOT NULL,
    location_id      text        NOT NULL,
    lines            jsonb       NOT NULL,
    customer         jsonb,
    shipping_address jsonb,
    cancel_reason    text,
    reservation      jsonb,
    fulfillments     jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sale_id)
);
CREATE INDEX sales_by_status ON orders.sales (tenant_id, status, created_at);
CREATE INDEX sales_by_created ON orders.sales (tenant_id, created_at);

CREATE TABLE orders.status_history (
    id          bigserial   PRIMARY KEY,
    sale        uuid        NOT NULL REFERENCES orders.sales (id),
    from_status text,
    to_status   text        NOT NULL,
    reason      text,
    actor       text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_history_by_sale ON orders.status_history (sale, id);
