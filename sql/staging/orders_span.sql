-- The staged orders a night on $as_of can see: its first and newest business date.
select min(order_date), max(order_date)
from staging.stg_orders
where order_date <= $as_of;
