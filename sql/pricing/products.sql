-- What the optimiser needs per active product: price, cost, category, stock that can be sold
-- within the $horizon days (on hand, plus on order when its lead time falls inside the
-- horizon), and the trailing 28-day mean of units bought, the expected-units fallback when no
-- demand forecast exists for the night.
with recent_sales as (
    select sku, avg(units_gross) as mean_daily_units
    from features.fct_daily_demand
    where date > cast($as_of as date) - 28 and date <= $as_of
    group by sku
)

select
    p.sku,
    coalesce(p.category, 'unknown') as category,
    p.current_price,
    p.unit_cost,
    p.unit_cost_is_default,
    greatest(i.on_hand, 0)
        + case when i.lead_time_days <= $horizon then greatest(i.on_order, 0) else 0 end
        as available_units,
    coalesce(t.mean_daily_units, 0) as mean_daily_units
from features.dim_product as p
join features.dim_inventory as i using (sku)
left join recent_sales as t using (sku)
where coalesce(p.active, true) and p.current_price > 0
order by p.sku;
