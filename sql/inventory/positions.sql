-- Every product the planner covers, with its stock position and lead time (defaults where
-- no snapshot landed, flagged in features.dim_inventory), its category for service levels,
-- and whether it is on sale (a catalogue without the flag counts as on sale).
select
    i.sku,
    coalesce(p.category, 'unknown') as category,
    coalesce(p.active, true) as active,
    i.on_hand,
    i.on_order,
    i.lead_time_days,
    i.lead_time_std_days,
    i.is_default
from features.dim_inventory as i
join features.dim_product as p using (sku)
order by i.sku;
