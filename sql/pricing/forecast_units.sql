-- Units the demand branch forecast (p50, summed) per SKU over the first $horizon days after
-- $as_of; only rows of the same night count, so a stale forecast is never used.
select sku, sum(greatest(p50, 0)) as forecast_units
from marts.demand_forecast
where as_of = $as_of and horizon_day <= $horizon
group by sku
order by sku;
