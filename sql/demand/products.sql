-- Every product the forecaster knows: its category, whether it is active (forecasts are
-- published for active products only), and a price for products that never sold.
select sku, coalesce(category, 'unknown') as category, coalesce(active, true) as active,
    current_price
from features.dim_product
order by sku;
