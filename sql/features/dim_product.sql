-- Products as models use them: every catalogue SKU and every SKU sold, with a cost (the
-- configured share of list price where none is known, flagged), sale dates and current price.
create or replace table features.dim_product as
with catalogue as (
    select * from staging.stg_products
),

sales as (
    select
        sku,
        min(date) as first_sale_date,
        max(date) filter (where units_gross > 0) as last_sale_date,
        arg_max(price, date) as current_price
    from features.fct_daily_demand
    group by sku
),

final as (
    select
        c.sku,
        c.name,
        c.category,
        c.list_price,
        coalesce(c.unit_cost, round(c.list_price * $default_cost_share, 4)) as unit_cost,
        c.unit_cost is null as unit_cost_is_default,
        c.active,
        c.is_derived,
        s.first_sale_date,
        s.last_sale_date,
        coalesce(s.current_price, c.list_price) as current_price
    from catalogue as c
    left join sales as s using (sku)
)

select * from final
order by sku;

comment on table features.dim_product is 'One row per product with cost, activity and current price as of the run.';
comment on column features.dim_product.unit_cost is 'Cost per unit: the catalogue cost, or list_price x NIGHTSHIFT_DEFAULT_COST_SHARE when unknown.';
comment on column features.dim_product.unit_cost_is_default is 'True when unit_cost is the configured default share of list price.';
comment on column features.dim_product.is_derived is 'True when the product row was derived from order lines.';
comment on column features.dim_product.current_price is 'Last observed average selling price up to as_of, else list price.';
comment on column features.dim_product.sku is 'The product; one row each, from the catalogue (landed or derived).';
comment on column features.dim_product.name is 'Product name; null when unknown.';
comment on column features.dim_product.category is 'Product category; uncategorised when not given.';
comment on column features.dim_product.list_price is 'Catalogue price per unit.';
comment on column features.dim_product.active is 'On sale; an inactive product is planned but not reordered or priced.';
comment on column features.dim_product.first_sale_date is 'First day with an order line of the product (where its fct_daily_demand series starts); null when never sold.';
comment on column features.dim_product.last_sale_date is 'Latest day with units sold, up to as_of; null when never sold.';
