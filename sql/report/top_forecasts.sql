-- The night's forecast for its $top SKUs with the most forecast units.
with tops as (
    select sku from demand_forecast_history
    where as_of = $as_of
    group by sku
    order by sum(p50) desc, sku
    limit $top
)
select sku, date, p10, p50, p90
from demand_forecast_history
where as_of = $as_of and sku in (select sku from tops)
order by sku, date;
