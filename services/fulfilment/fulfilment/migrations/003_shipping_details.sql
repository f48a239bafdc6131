-- Where each fulfillment ships from and to, as its sale said at shipping init: what its
-- label prints. Kept beside the fulfillment (not in it) because only the label reads it. A
-- fulfillment created before this table has no row here: its label names the location by
-- its id and says no address was recorded.
CREATE TABLE fulfilment.shipping_details (
    id               uuid  PRIMARY KEY REFERENCES fulfilment.fulfillments (id),
    customer         jsonb,
    shipping_address jsonb,
    -- the location's {name, address} as stock's reservation named it; NULL when it did not
    sender           jsonb
);
