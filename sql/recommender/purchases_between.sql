-- Distinct (customer, SKU) bought in ($after, $until]: the holdout's relevant items, and the
-- recently bought items that are never recommended.
select distinct customer_id, sku
from staging.stg_orders
where customer_id is not null
    and quantity > 0
    and order_date > $after
    and order_date <= $until;
