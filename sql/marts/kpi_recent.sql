select date, orders, units, gmv, aov, customers, conversion_rate
from marts.kpi_daily
where date > cast($as_of as date) - 28
order by date desc;
