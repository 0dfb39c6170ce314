-- The last 90 days of KPIs as published by the night $as_of.
select date, orders, units, gmv, conversion_rate
from kpi_daily_history
where as_of = $as_of and date > cast($as_of as date) - 90
order by date;
