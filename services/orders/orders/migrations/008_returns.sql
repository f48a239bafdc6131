-- Returns of shipped sales (docs/api-guide.md, "Returns"). Each belongs to one sale; what
-- a sale may still return is what shipped less the lines of its returns, so a new return
-- locks its sale's row and reads the others. `received_lines` are what came back, each with
-- its disposition and location, once the return is received. A canceled return claims
-- nothing.
CREATE TABLE orders.returns (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    sale           uuid        NOT NULL REFERENCES orders.sales (id),
    sale_id        text        NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('requested', 'received', 'closed', 'canceled')),
    version        integer     NOT NULL DEFAULT 1,
    reason         text        NOT NULL
        CHECK (reason IN ('damaged', 'wrong_item', 'no_longer_needed', 'other')),
    lines          jsonb       NOT NULL,
    received_lines jsonb       NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    received_at    timestamptz,
    closed_at      timestamptz,
    canceled_at    timestamptz
);
CREATE INDEX returns_by_created ON orders.returns (tenant_id, created_at, id);
CREATE INDEX returns_by_sale ON orders.returns (sale, created_at);
