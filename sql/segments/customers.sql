-- Every identified customer with a purchase by as_of (features.customer_rfm is built for the
-- night's as_of): the columns segments are fitted on and profiled by.
select
    customer_id,
    country,
    recency_days,
    frequency,
    monetary,
    avg_order_value,
    avg_units_per_order,
    tenure_days,
    orders_last_90d,
    return_rate
from features.customer_rfm
order by customer_id;
