-- A fulfillment is inserted once and moved a few times (picked, packed, shipped,
-- delivered); a move changes no indexed column, so with room left on its page the new row
-- version stays there (a HOT update) instead of adding an entry to each of the table's five
-- indexes. Pages filled before this keep their fill; new ones leave a quarter free.
ALTER TABLE fulfilment.fulfillments SET (fillfactor = 75);
