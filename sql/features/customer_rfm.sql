-- Recency, frequency, monetary and behaviour per identified customer, as of $as_of.
create or replace table features.customer_rfm as
with lines as (
    select customer_id, order_id, order_date, quantity, unit_price, sku, country
    from staging.stg_orders
    where customer_id is not null and order_date <= $as_of
),

orders as (
    select
        customer_id,
        order_id,
        min(order_date) as order_date,
        sum(quantity * unit_price) filter (where quantity > 0) as order_value,
        sum(quantity) filter (where quantity > 0) as order_units
    from lines
    group by customer_id, order_id
    having count(*) filter (where quantity > 0) > 0
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as frequency,
        avg(order_value) as avg_order_value,
        avg(order_units) as avg_units_per_order,
        count(*) filter (where order_date > cast($as_of as date) - 90) as orders_last_90d
    from orders
    group by customer_id
),

per_line as (
    select
        customer_id,
        sum(quantity * unit_price) as monetary,
        coalesce(sum(-quantity) filter (where quantity < 0), 0)
            / nullif(sum(quantity) filter (where quantity > 0), 0) as return_rate,
        count(distinct sku) as distinct_skus,
        mode(country) as country
    from lines
    group by customer_id
),

sessions as (
    select user_id as customer_id, count(distinct session_id) as sessions
    from staging.stg_events
    where event_date <= $as_of
    group by user_id
),

final as (
    select
        c.customer_id,
        l.country,
        c.first_order_date,
        c.last_order_date,
        date_diff('day', c.last_order_date, cast($as_of as date)) as recency_days,
        c.frequency,
        l.monetary,
        c.avg_order_value,
        c.avg_units_per_order,
        date_diff('day', c.first_order_date, cast($as_of as date)) as tenure_days,
        c.orders_last_90d,
        coalesce(l.return_rate, 0) as return_rate,
        l.distinct_skus,
        s.sessions
    from per_customer as c
    join per_line as l using (customer_id)
    left join sessions as s using (customer_id)
)

select * from final
order by customer_id;

comment on table features.customer_rfm is 'One row per identified customer with at least one purchase by as_of: RFM and behaviour.';
comment on column features.customer_rfm.recency_days is 'Days from the last order to as_of.';
comment on column features.customer_rfm.frequency is 'Distinct orders with a purchased line.';
comment on column features.customer_rfm.monetary is 'Net revenue: purchases minus returns.';
comment on column features.customer_rfm.avg_order_value is 'Mean gross value of the customer''s orders.';
comment on column features.customer_rfm.tenure_days is 'Days from the first order to as_of.';
comment on column features.customer_rfm.return_rate is 'Units returned / units bought.';
comment on column features.customer_rfm.sessions is 'Browsing sessions seen; null when no events landed.';
comment on column features.customer_rfm.customer_id is 'The customer; one row each.';
comment on column features.customer_rfm.country is 'The country most of the customer''s order lines carry.';
comment on column features.customer_rfm.first_order_date is 'Business date of the first order with a purchased line.';
comment on column features.customer_rfm.last_order_date is 'Business date of the latest order with a purchased line, up to as_of.';
comment on column features.customer_rfm.avg_units_per_order is 'Mean units bought per order.';
comment on column features.customer_rfm.orders_last_90d is 'Orders in the 90 days up to as_of.';
comment on column features.customer_rfm.distinct_skus is 'Distinct products on the customer''s order lines (returns included).';
