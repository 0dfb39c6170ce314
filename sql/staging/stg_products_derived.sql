-- No catalogue landed: derive one from the staged order lines, so every sold sku has a
-- product. list_price is the median positive selling price; cost stays unknown (null) and
-- active means sold within the last $active_window_days days of the data.
insert into staging.derived_products
with sales as (
    select sku, unit_price, order_date
    from staging.stg_orders
    where quantity > 0 and unit_price > 0
),

per_sku as (
    select
        sku,
        median(unit_price) as list_price,
        max(order_date) as last_sale_date
    from sales
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
