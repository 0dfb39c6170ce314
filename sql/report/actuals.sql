-- The last 8 weeks of actual net units for the report's forecast SKUs.
select sku, date, units_net
from features.fct_daily_demand
where sku in (select unnest(cast($skus as varchar[])))
  and date > cast($as_of as date) - 56
order by sku, date;
