-- Stock position per active SKU as of the run: the latest snapshot on or before $as_of, or,
-- where none landed, a default of $default_cover_days days of trailing 90-day mean demand
-- with the default lead time, flagged is_default so planners know it is not a count.
create or replace table features.dim_inventory as
with latest as (
    select * exclude (rn)
    from (
        select *, row_number() over (partition by sku order by as_of desc) as rn
        from staging.stg_inventory
        where as_of <= $as_of
    )
    where rn = 1
),

recent_demand as (
    select sku, avg(units_net) as mean_daily_units
    from features.fct_daily_demand
    where date > cast($as_of as date) - 90
    group by sku
),

final as (
    select
        p.sku,
        coalesce(l.on_hand, cast(round(greatest(coalesce(t.mean_daily_units, 0), 0) * $default_cover_days) as bigint)) as on_hand,
        coalesce(l.on_order, 0) as on_order,
        coalesce(l.lead_time_days, $default_lead_time_days) as lead_time_days,
        l.lead_time_std_days,
        coalesce(l.as_of, cast($as_of as date)) as snapshot_date,
        l.sku is null as is_default
    from features.dim_product as p
    left join latest as l using (sku)
    left join recent_demand as t using (sku)
)

select * from final
order by sku;

comment on table features.dim_inventory is 'Stock position per product: the latest snapshot on or before as_of, or a flagged default.';
comment on column features.dim_inventory.on_hand is 'Units in stock; when is_default, NIGHTSHIFT_DEFAULT_COVER_DAYS x trailing 90-day mean daily net units.';
comment on column features.dim_inventory.is_default is 'True when no snapshot landed and the row is a configured default.';
comment on column features.dim_inventory.sku is 'The product; one row per features.dim_product row.';
comment on column features.dim_inventory.on_order is 'Units ordered from suppliers, not yet received; 0 when not given.';
comment on column features.dim_inventory.lead_time_days is 'Supplier lead time in days; NIGHTSHIFT_DEFAULT_LEAD_TIME_DAYS when not given.';
comment on column features.dim_inventory.lead_time_std_days is 'Standard deviation of the lead time in days; null when unknown.';
comment on column features.dim_inventory.snapshot_date is 'Date of the snapshot used; as_of when is_default.';
