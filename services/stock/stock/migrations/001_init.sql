CREATE TABLE stock.products (
    tenant_id   uuid        NOT NULL,
    sku         text        NOT NULL,
    name        text        NOT NULL,
    ean         text,
    unit_type   text        NOT NULL DEFAULT 'unit',
    min_level   integer     NOT NULL DEFAULT 0 CHECK (min_level >= 0),
    is_bulky    boolean     NOT NULL DEFAULT false,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE stock.locations (
    tenant_id   uuid        NOT NULL,
    location_id text        NOT NULL,
    name        text        NOT NULL,
    address     jsonb,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, location_id)
);

-- The database itself refuses an oversold record: 0 <= reserved <= quantity.
CREATE TABLE stock.stock_records (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    location_id text        NOT NULL,
    sku         text        NOT NULL,
    quantity    integer     NOT NULL,
    reserved    integer     NOT NULL DEFAULT 0,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, location_id, sku),
    FOREIGN KEY (tenant_id, sku) REFERENCES stock.products (tenant_id, sku),
    FOREIGN KEY (tenant_id, location_id) REFERENCES stock.locations (tenant_id, location_id),
    CONSTRAINT never_oversold CHECK (reserved >= 0 AND reserved <= quantity)
);

CREATE TABLE stock.movements (
    id              bigserial   PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    stock_record_id uuid        NOT NULL REFERENCES stock.stock_records (id),
    location_id     text        NOT NULL,
    sku             text        NOT NULL,
    reason          text        NOT NULL CHECK (reason IN
        ('audit', 'restock', 'loss', 'adjustment', 'reservation', 'release', 'commit', 'transfer')),
    quantity_change integer     NOT NULL,
    reserved_change integer     NOT NULL,
    quantity_after  integer     NOT NULL,
    reserved_after  integer     NOT NULL,
    actor           text        NOT NULL,
    reference       text,
    notes           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX movements_by_record ON stock.movements (tenant_id, location_id, sku, id);

CREATE TABLE stock.reservations (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    sale        uuid        NOT NULL,
    sale_id     text        NOT NULL,
    location_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'committed', 'released')),
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sale)
);

CREATE TABLE stock.reservation_lines (
    reservation_id  uuid    NOT NULL REFERENCES stock.reservations (id),
    stock_record_id uuid    NOT NULL REFERENCES stock.stock_records (id),
    sku             text    NOT NULL,
    quantity        integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
);
