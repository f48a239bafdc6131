-- Where each fulfillment ships to, as its sale said at shipping init: what its label prints.
-- Kept beside the fulfillment (not in it) because only the label reads it. A fulfillment
-- created before this table has no row here: its label says no address was recorded.
CREATE TABLE fulfilment.shipping_details (
    id               uuid  PRIMARY KEY REFERENCES fulfilment.fulfillments (id),
    customer         jsonb,
    shipping_address jsonb
);
