-- Example queries over the published marts. Run any of them with
--   nightshift query "$(sed -n '/^-- name: kpi_trend/,/^-- name:/p' docs/analyst_queries.sql)"
-- or paste into `duckdb -readonly .nightshift/marts.duckdb`. Each query starts with a
-- `-- name:` line; tests/integration/test_analyst_surface.py runs every one on a tiny run.

-- name: top_recommendations_for_a_customer
-- The 20 products recommended to one customer tonight (swap in a customer_id).
select customer_id, rank, sku, round(score, 3) as score, source, model
from recommendations
where customer_id = (select min(customer_id) from recommendations where source = 'mf')
order by rank;

-- name: stockout_risk_this_week
-- Products on sale that run out within 7 days at median demand, or are already at their
-- reorder point: what to chase with suppliers today.
select sku, demand_class, on_hand, on_order, reorder_point, order_qty,
       round(days_of_cover, 1) as days_of_cover, stockout_date
from inventory_plan
where active
  and (stockout_date <= as_of + interval 7 day or on_hand + on_order <= reorder_point)
order by stockout_date nulls last, days_of_cover;

-- name: biggest_profit_uplift_price_changes
-- Tonight's price changes with the largest expected profit gain over the horizon.
select sku, current_price, recommended_price,
       round(100 * (recommended_price / current_price - 1), 1) as change_pct,
       round(profit_uplift, 2) as profit_uplift, binding_constraint
from price_recommendations
where recommended_price <> current_price
order by profit_uplift desc
limit 20;

-- name: segment_migration_between_two_nights
-- How customers moved between segments from the second-newest night to the newest.
with nights as (
    select distinct as_of from customer_segments_history order by as_of desc limit 2
),
before as (
    select customer_id, segment_name from customer_segments_history
    where as_of = (select min(as_of) from nights)
),
after as (
    select customer_id, segment_name from customer_segments_history
    where as_of = (select max(as_of) from nights)
)
select before.segment_name as from_segment, after.segment_name as to_segment,
       count(*) as customers
from before
join after using (customer_id)
group by all
order by customers desc;

-- name: forecast_vs_actual_last_week
-- Shop-level units forecast a week ago (p50, p10–p90) against what sold, day by day.
with last_night as (select max(as_of) as as_of from kpi_daily),
week_ago as (
    select max(as_of) as as_of from demand_forecast_history
    where as_of <= (select as_of from last_night) - interval 7 day
),
forecast as (
    select date, sum(p10) as p10, sum(p50) as p50, sum(p90) as p90
    from demand_forecast_history
    where as_of = (select as_of from week_ago)
      and date <= (select as_of from last_night)
    group by date
)
select forecast.date, round(forecast.p10) as p10, round(forecast.p50) as p50,
       round(forecast.p90) as p90, kpi_daily.units as actual_units,
       round(100 * (forecast.p50 - kpi_daily.units) / nullif(kpi_daily.units, 0), 1) as error_pct
from forecast
join kpi_daily using (date)
order by forecast.date;

-- name: kpi_trend
-- The last 28 days of orders, GMV and conversion with 7-day moving averages.
select date, orders, round(gmv, 2) as gmv,
       round(avg(gmv) over (order by date rows between 6 preceding and current row), 2) as gmv_7d,
       round(conversion_rate, 4) as conversion_rate,
       round(avg(conversion_rate) over (order by date rows between 6 preceding and current row), 4)
           as conversion_rate_7d
from kpi_daily
qualify date > (select max(date) from kpi_daily) - interval 28 day
order by date;
