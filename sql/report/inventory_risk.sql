-- Products on sale that run out within 14 days at median demand or sit at their reorder
-- point (a discontinued product running out is no risk; nights before the active column
-- was published read it as NULL and keep every product).
select sku, demand_class, on_hand, on_order, round(reorder_point, 1) as reorder_point, order_qty,
       round(days_of_cover, 1) as days_of_cover, stockout_date
from inventory_plan_history
where as_of = $as_of
  and active is not false
  and (stockout_date <= cast($as_of as date) + 14 or on_hand + on_order <= reorder_point)
order by stockout_date nulls last, days_of_cover
limit 25;
