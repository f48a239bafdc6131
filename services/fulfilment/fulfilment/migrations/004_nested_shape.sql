-- What a fulfillment shows of its sale and location (the nested shape of data version 2),
-- copied from the sale when the fulfillment is created: the sale's shop and creation time,
-- and the location's name. Fulfillments created before keep empty shop names, their sale's
-- creation time is taken as their own, and their location is named by its code.
ALTER TABLE fulfilment.fulfillments
    ADD COLUMN shop_channel      text        NOT NULL DEFAULT '',
    ADD COLUMN shop_name         text        NOT NULL DEFAULT '',
    ADD COLUMN sale_date_created timestamptz,
    ADD COLUMN location_name     text;
UPDATE fulfilment.fulfillments
    SET sale_date_created = date_created, location_name = location;
ALTER TABLE fulfilment.fulfillments
    ALTER COLUMN sale_date_created SET NOT NULL,
    ALTER COLUMN location_name SET NOT NULL,
    ALTER COLUMN shop_channel DROP DEFAULT,
    ALTER COLUMN shop_name DROP DEFAULT;
