-- Every customer or visitor id seen up to $as_of (bought, or browsed under a visitor id that
-- returns with its cookie; a signed-in visitor's id is the customer id), with the country of
-- their latest order line (NULL when they never ordered).
with buyers as (
    select customer_id, arg_max(country, ordered_at) as country
    from staging.stg_orders
    where customer_id is not null and order_date <= $as_of
    group by customer_id
),

visitors as (
    select distinct user_id as customer_id
    from staging.stg_events
    where user_id is not null and event_date <= $as_of
)

select customer_id, b.country
from buyers as b
full outer join visitors as v using (customer_id)
order by customer_id;
