-- A sale split across locations ships one part from each location of its reservation: the
-- parts shipped so far, `[{location_id, shipped_at}]` in the order they shipped. The sale
-- becomes `shipped` when every location has, and cannot be canceled once any has. Sales
-- shipped before this have none recorded (their status says it all).
ALTER TABLE orders.sales ADD COLUMN shipped_parts jsonb NOT NULL DEFAULT '[]';
