-- Products of the loaded Online Retail catalogue (its archive copy, $archived_catalogue)
-- that a newly derived catalogue (the registered frame new_catalogue) would drop while
-- staged orders of other files than the one being mapped ($orders_file) still sell them:
-- the night would quarantine those order lines as unknown_sku.
select o.sku, min(o.source_file) as source_file, count(*) as order_lines
from staging.stg_orders as o
where o.source_file <> $orders_file
  and o.sku in (select sku from read_parquet($archived_catalogue))
  and not exists (select 1 from new_catalogue as c where c.sku = o.sku)
group by o.sku
order by order_lines desc, o.sku;
