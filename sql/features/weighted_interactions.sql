-- features.weighted_interactions(end_date, ...): implicit feedback per (customer, SKU) up to
-- end_date. A table macro, so that the nightly feature table (as of as_of) and the
-- recommender's training view (as of the holdout cutoff) are one definition. Views and
-- add-to-carts come from events, purchases from order lines (the source of truth for
-- purchases, so purchase events are not counted twice). weight = sum of signal weights, each
-- decayed by its age at the end of end_date with the given half-life.
create or replace macro features.weighted_interactions(
    end_date, weight_view, weight_cart, weight_purchase, half_life_days
) as table
with cutoff as (
    select cast(cast(end_date as date) + 1 as timestamptz) as end_ts
),

browsing as (
    select user_id as customer_id, sku, event_type as signal, ts
    from staging.stg_events
    where sku is not null and event_type in ('view', 'add_to_cart') and event_date <= end_date
),

purchases as (
    select customer_id, sku, 'purchase' as signal, ordered_at as ts
    from staging.stg_orders
    where customer_id is not null and quantity > 0 and order_date <= end_date
),

signals as (
    select * from browsing
    union all
    select * from purchases
),

weighted as (
    select
        s.*,
        case s.signal
            when 'view' then weight_view
            when 'add_to_cart' then weight_cart
            else weight_purchase
        end * pow(0.5, date_diff('second', s.ts, c.end_ts) / 86400.0 / half_life_days) as weight
    from signals as s
    cross join cutoff as c
)

select
    customer_id,
    sku,
    count(*) filter (where signal = 'view') as views,
    count(*) filter (where signal = 'add_to_cart') as carts,
    count(*) filter (where signal = 'purchase') as purchases,
    min(ts) as first_at,
    max(ts) as last_at,
    -- compensated sum, rounded: the result must not depend on the order rows arrive in
    round(fsum(weight), 9) as weight
from weighted
group by customer_id, sku;
