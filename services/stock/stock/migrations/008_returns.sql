-- Returns (docs/api-guide.md, "Returns"): units of a returned sale put back on hand
-- (`return`), and those discarded, recorded without a quantity change (`discard`). The
-- ledger's reasons are widened to them. The list keeps every reason an earlier migration
-- allowed (inbound receipts' `receipt`, bundle builds' `build`), so that it stays the
-- union whatever order the migrations of one release were written in.
ALTER TABLE stock.movements DROP CONSTRAINT IF EXISTS movements_reason_check;
ALTER TABLE stock.movements ADD CONSTRAINT movements_reason_check CHECK (reason IN
    ('audit', 'restock', 'loss', 'adjustment', 'reservation', 'release', 'commit', 'transfer',
     'receipt', 'build', 'return', 'discard'));
