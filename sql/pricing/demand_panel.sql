-- The elasticity regression's panel: per SKU and day in the $days days up to $as_of, units
-- bought (gross: a return says nothing about the price on the day it comes back), the price,
-- and the rest of the SKU's category's units that day (the regression's offset, which
-- carries the week, the category's season and the shop's growth).
with panel as (
    select
        d.sku,
        d.date,
        cast(d.units_gross as double) as units,
        d.price,
        coalesce(p.category, 'unknown') as category
    from features.fct_daily_demand as d
    join features.dim_product as p using (sku)
    where d.date <= $as_of and d.date > cast($as_of as date) - cast($days as integer)
)

select
    sku,
    date,
    units,
    price,
    category,
    sum(units) over (partition by category, date) - units as category_units
from panel
order by sku, date;
