select min(order_date), max(order_date), count(distinct customer_id), count(distinct sku)
from staging.stg_orders;
