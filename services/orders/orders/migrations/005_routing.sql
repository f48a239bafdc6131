-- A sale may name no location: stock routes it (docs/api-guide.md, "Routing and split
-- shipments"); `allow_split: false` keeps it in one location.
ALTER TABLE orders.sales
    ALTER COLUMN location_id DROP NOT NULL,
    ADD COLUMN allow_split boolean NOT NULL DEFAULT true;
