-- No catalogue landed: derive one from the staged order lines, so every sold sku has a
-- product. A sale is a line with a positive quantity and price (a giveaway is not one).
-- list_price is the median sale price, else the median price it was returned at, else 0
-- (never priced); cost stays unknown (null) and active means a sale within the last
-- $active_window_days days of the data. nightshift.online_retail.to_products holds the
-- same rules for a mapped Online Retail file.
insert into staging.derived_products
with priced as (
    select sku, unit_price, quantity, order_date
    from staging.stg_orders
    where unit_price > 0 and quantity <> 0
),

per_sku as (
    select
        sku,
        coalesce(
            median(unit_price) filter (where quantity > 0),
            median(unit_price) filter (where quantity < 0)
        ) as list_price,
        max(order_date) filter (where quantity > 0) as last_sale_date
    from priced
    group by sku
),

horizon as (
    select max(order_date) as last_date from staging.stg_orders
),

every_sku as (
    select distinct sku from staging.stg_orders
),

final as (
    select
        s.sku,
        cast(null as varchar) as name,
        'uncategorised' as category,
        cast(null as decimal(18, 4)) as unit_cost,
        coalesce(p.list_price, 0) as list_price,
        coalesce(p.last_sale_date > h.last_date - cast($active_window_days as integer), false) as active
    from every_sku as s
    left join per_sku as p using (sku)
    cross join horizon as h
)

select * from final;
