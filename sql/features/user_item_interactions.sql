-- Implicit feedback per (customer, SKU) up to $as_of: views and add-to-carts from events,
-- purchases from order lines (the source of truth for purchases, so purchase events are not
-- counted twice). weight = sum of signal weights, each decayed by its age with a half-life.
create or replace table features.user_item_interactions as
with cutoff as (
    select cast(cast($as_of as date) + 1 as timestamptz) as end_ts
),

browsing as (
    select user_id as customer_id, sku, event_type as signal, ts
    from staging.stg_events
    where sku is not null and event_type in ('view', 'add_to_cart') and event_date <= $as_of
),

purchases as (
    select customer_id, sku, 'purchase' as signal, ordered_at as ts
    from staging.stg_orders
    where customer_id is not null and quantity > 0 and order_date <= $as_of
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
            when 'view' then $weight_view
            when 'add_to_cart' then $weight_cart
            else $weight_purchase
        end * pow(0.5, date_diff('second', s.ts, c.end_ts) / 86400.0 / $half_life_days) as weight
    from signals as s
    cross join cutoff as c
),

final as (
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
    group by customer_id, sku
)

select * from final
order by customer_id, sku;

comment on table features.user_item_interactions is 'Implicit feedback per customer and SKU up to as_of, for the recommender.';
comment on column features.user_item_interactions.views is 'Product views (events).';
comment on column features.user_item_interactions.carts is 'Add-to-cart events.';
comment on column features.user_item_interactions.purchases is 'Order lines bought (from orders, not purchase events).';
comment on column features.user_item_interactions.weight is 'Sum over signals of weight (view/cart/purchase, from settings) x 0.5^(age_days / half-life).';
