-- The item space: every product as of the run, and whether it may be recommended.
select sku, coalesce(active, true) as active
from features.dim_product
order by sku;
