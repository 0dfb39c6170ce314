select
    (select count(*) from features.dim_product where unit_cost_is_default) as unit_cost_defaulted,
    (select count(*) from features.dim_inventory where is_default) as inventory_defaulted;
