-- Daily shop KPIs from the first order date to $as_of. Click-stream KPIs are NULL (not zero)
-- when no events landed at all: the data cannot support them. A session belongs to the date
-- of its first event.
create or replace table marts.kpi_daily as
with bounds as (
    select min(order_date) as first_date from staging.stg_orders where order_date <= $as_of
),

calendar as (
    select cast(d.day as date) as date
    from bounds as b,
        lateral unnest(generate_series(
            cast(b.first_date as timestamp), cast($as_of as timestamp), interval 1 day
        )) as d(day)
),

lines as (
    select * from staging.stg_orders where order_date <= $as_of
),

first_orders as (
    select customer_id, min(order_date) as first_date
    from lines
    where customer_id is not null and quantity > 0
    group by customer_id
),

order_days as (
    select
        order_date as date,
        count(distinct order_id) filter (where quantity > 0) as orders,
        cast(sum(quantity) as bigint) as units,
        coalesce(sum(quantity * unit_price) filter (where quantity > 0), 0) as gmv,
        count(distinct customer_id) filter (where quantity > 0) as customers
    from lines
    group by order_date
),

new_customers as (
    select first_date as date, count(*) as new_customers
    from first_orders
    group by first_date
),

has_events as (
    select count(*) > 0 as any_events from staging.stg_events
),

sessions as (
    select
        session_id,
        min(event_date) as date,
        count(*) as events,
        bool_or(event_type = 'purchase') as converted
    from staging.stg_events
    where event_date <= $as_of
    group by session_id
),

session_days as (
    select
        date,
        count(*) as sessions,
        count(*) filter (where converted) as converted_sessions,
        count(*) filter (where events = 1) as bounced_sessions
    from sessions
    group by date
),

funnel_days as (
    select
        event_date as date,
        count(*) filter (where event_type = 'impression') as impressions,
        count(*) filter (where event_type = 'view') as views
    from staging.stg_events
    where event_date <= $as_of
    group by event_date
),

final as (
    select
        c.date,
        coalesce(o.orders, 0) as orders,
        coalesce(o.units, 0) as units,
        cast(coalesce(o.gmv, 0) as decimal(18, 2)) as gmv,
        cast(o.gmv / nullif(o.orders, 0) as decimal(18, 2)) as aov,
        coalesce(o.customers, 0) as customers,
        coalesce(n.new_customers, 0) as new_customers,
        (o.customers - coalesce(n.new_customers, 0)) / nullif(o.customers, 0) as repeat_customer_rate,
        case when e.any_events then coalesce(s.sessions, 0) end as sessions,
        case when e.any_events then s.converted_sessions / nullif(s.sessions, 0) end as conversion_rate,
        case when e.any_events then s.bounced_sessions / nullif(s.sessions, 0) end as bounce_rate,
        case when e.any_events then f.views / nullif(f.impressions, 0) end as ctr,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from calendar as c
    cross join has_events as e
    left join order_days as o using (date)
    left join new_customers as n using (date)
    left join session_days as s using (date)
    left join funnel_days as f using (date)
)

select * from final
order by date;

comment on table marts.kpi_daily is 'Daily shop KPIs from the first order to as_of; click-stream KPIs are NULL when no events landed.';
comment on column marts.kpi_daily.date is 'Business date in the shop timezone.';
comment on column marts.kpi_daily.orders is 'Distinct orders with at least one purchased (positive) line that day.';
comment on column marts.kpi_daily.units is 'Net units: units bought minus units returned that day.';
comment on column marts.kpi_daily.gmv is 'Gross merchandise value: sum of quantity x unit_price over purchased lines, before returns.';
comment on column marts.kpi_daily.aov is 'Average order value: gmv / orders; NULL without orders.';
comment on column marts.kpi_daily.customers is 'Distinct identified customers with a purchase that day (guests not counted).';
comment on column marts.kpi_daily.new_customers is 'Customers whose first purchase in the data is that day.';
comment on column marts.kpi_daily.repeat_customer_rate is '(customers - new_customers) / customers: share of buyers who had bought before; NULL without customers.';
comment on column marts.kpi_daily.sessions is 'Browsing sessions starting that day; NULL when no events landed at all.';
comment on column marts.kpi_daily.conversion_rate is 'Sessions with a purchase event / sessions; NULL without sessions.';
comment on column marts.kpi_daily.bounce_rate is 'Sessions with exactly one event / sessions; NULL without sessions.';
comment on column marts.kpi_daily.ctr is 'Click-through rate: product views / product impressions that day; NULL without impressions.';
comment on column marts.kpi_daily.as_of is 'The business date the run covers.';
comment on column marts.kpi_daily.run_id is 'The nightly run that built the row (meta.runs / runs).';
comment on column marts.kpi_daily.mlflow_run_id is 'The MLflow parent run of that night.';
