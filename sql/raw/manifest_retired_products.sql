-- The retired products (sql/staging/retire_products.sql), written beside the raw archive
-- (raw/retired_products.parquet): no loaded file holds them any more.
select sku, name, category, unit_cost, list_price, retired_by, retired_at
from meta.retired_products
order by sku;
