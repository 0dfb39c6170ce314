-- The demand panel's cells: net units and price per SKU and day up to $as_of.
select sku, date, units_net, price
from features.fct_daily_demand
where date <= $as_of
order by sku, date;
