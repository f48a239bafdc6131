-- Orders keeps a copy of each tenant's catalogue from `product.created` events, which stock
-- publishes with every new product from now on. The products that exist already are
-- announced once here, through the outbox like any other event.
INSERT INTO stock.outbox (event_id, topic, key, payload, event_type)
SELECT e.id, 'stock.events', p.tenant_id::text || ':product:' || p.sku,
       convert_to(jsonb_build_object(
           'specversion', '1.0', 'id', e.id, 'source', '/stock', 'type', 'product.created',
           'time', now(), 'subject', 'product/' || p.sku,
           'datacontenttype', 'application/json', 'dataversion', '1',
           'tenantid', p.tenant_id,
           'data', jsonb_build_object(
               'sku', p.sku, 'name', p.name, 'ean', p.ean, 'unit_type', p.unit_type,
               'min_level', p.min_level, 'is_bulky', p.is_bulky, 'version', p.version,
               'created_at', p.created_at, 'updated_at', p.updated_at))::text, 'UTF8'),
       'product.created'
FROM stock.products p CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id) e
ORDER BY p.created_at;
