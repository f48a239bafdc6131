-- `GET /sales?sale_id=` finds sales by a prefix of their sale_id (LIKE 'prefix%'): an index
-- that compares bytes, whatever the database's collation, serves it.
CREATE INDEX sales_by_sale_id_prefix ON orders.sales (tenant_id, sale_id text_pattern_ops);
