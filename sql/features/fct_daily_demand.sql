-- Daily demand per SKU on a full calendar: every day from the SKU's first order line to
-- $as_of, zero days included, so forecasters see the zeros. Returns count on the day they
-- happen and reduce net units. `price` carries the last observed selling price forward over
-- zero days (falling back to the list price), so it is known on every day. A line at price
-- zero is a giveaway, not a price: its units count as demand, but it sets no price (the
-- real data gives items away; a price of 0 carried forward broke every log-price model).
create or replace table features.fct_daily_demand as
with lines as (
    select sku, order_date, order_id, quantity, unit_price
    from staging.stg_orders
    where order_date <= $as_of
),

daily as (
    select
        sku,
        order_date as date,
        cast(coalesce(sum(quantity) filter (where quantity > 0), 0) as bigint) as units_gross,
        cast(coalesce(-sum(quantity) filter (where quantity < 0), 0) as bigint) as units_returned,
        sum(quantity) filter (where quantity > 0 and unit_price > 0) as units_paid,
        coalesce(sum(quantity * unit_price) filter (where quantity > 0), 0) as revenue_gross,
        sum(quantity * unit_price) as revenue_net,
        count(distinct order_id) filter (where quantity > 0) as orders
    from lines
    group by sku, order_date
),

first_days as (
    select sku, min(order_date) as first_date from lines group by sku
),

calendar as (
    select f.sku, cast(d.day as date) as date
    from first_days as f,
        lateral unnest(generate_series(
            cast(f.first_date as timestamp), cast($as_of as timestamp), interval 1 day
        )) as d(day)
),

joined as (
    select
        c.sku,
        c.date,
        coalesce(d.units_gross, 0) as units_gross,
        coalesce(d.units_returned, 0) as units_returned,
        coalesce(d.units_gross, 0) - coalesce(d.units_returned, 0) as units_net,
        coalesce(d.revenue_gross, 0) as revenue_gross,
        coalesce(d.revenue_net, 0) as revenue_net,
        coalesce(d.orders, 0) as orders,
        case when d.units_paid > 0 then d.revenue_gross / d.units_paid end as avg_price
    from calendar as c
    left join daily as d using (sku, date)
),

final as (
    select
        j.*,
        coalesce(
            last_value(j.avg_price ignore nulls) over (
                partition by j.sku order by j.date
                rows between unbounded preceding and current row
            ),
            p.list_price
        ) as price,
        j.units_gross = 0 and j.units_returned = 0 as is_zero_day
    from joined as j
    left join staging.stg_products as p using (sku)
)

select * from final
order by sku, date;

comment on table features.fct_daily_demand is 'Daily demand per SKU, one row per SKU and calendar day from its first order line to as_of, zero days included.';
comment on column features.fct_daily_demand.date is 'Business date (shop timezone).';
comment on column features.fct_daily_demand.units_gross is 'Units sold that day (positive lines).';
comment on column features.fct_daily_demand.units_returned is 'Units returned that day (from negative lines), as a positive number.';
comment on column features.fct_daily_demand.units_net is 'units_gross - units_returned: the demand series models use.';
comment on column features.fct_daily_demand.revenue_gross is 'Sum of quantity x unit_price over positive lines.';
comment on column features.fct_daily_demand.revenue_net is 'Sum of quantity x unit_price over all lines (returns subtract).';
comment on column features.fct_daily_demand.orders is 'Distinct orders with a positive line of the SKU.';
comment on column features.fct_daily_demand.avg_price is 'Average price of the units sold at a positive price (giveaways at 0 excluded); null on days with none.';
comment on column features.fct_daily_demand.price is 'Last observed avg_price up to the day, else the list price.';
comment on column features.fct_daily_demand.is_zero_day is 'True when nothing was sold or returned.';
comment on column features.fct_daily_demand.sku is 'The product; one row per product and day.';
