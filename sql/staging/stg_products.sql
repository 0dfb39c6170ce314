-- Products: one status per distinct raw catalogue row (exact copies are duplicates), then the clean catalogue. When no catalogue has
-- landed, stg_products_derived.sql fills staging.derived_products from the order lines.
create or replace table staging.judged_products as
with hashed as not materialized (
    -- the raw archive: one Parquet file per loaded landing file (tasks/ingest.py)
    select *, hash(sku, name, category, unit_cost, list_price, active) as row_hash
    from read_parquet($raw_products_files)
),

repeated_hashes as (
    select row_hash from hashed group by row_hash having count(*) > 1
),

-- Exact copies share a hash, so only rows whose hash repeats can be duplicates; grouping
-- those few by every column keeps the check exact (a hash collision stays two rows), while
-- the unique majority skips the costly group-by over all text columns.
distinct_rows as (
    select
        sku, name, category, unit_cost, list_price, active,
        {'file': source_file, 'row': source_row} as first_copy,
        1 as copies
    from hashed
    anti join repeated_hashes using (row_hash)
    union all
    select
        sku, name, category, unit_cost, list_price, active,
        min({'file': source_file, 'row': source_row}) as first_copy,
        count(*) as copies
    from hashed
    semi join repeated_hashes using (row_hash)
    group by sku, name, category, unit_cost, list_price, active
),

typed as (
    select
        d.*,
        f.load_id,
        nullif(trim(sku), '') as sku_v,
        try_cast(trim(list_price) as decimal(18, 4)) as list_price_v,
        try_cast(trim(unit_cost) as decimal(18, 4)) as unit_cost_v,
        case lower(trim(coalesce(active, 'true')))
            when 'true' then true when 't' then true when '1' then true when 'yes' then true
            when 'false' then false when 'f' then false when '0' then false when 'no' then false
        end as active_v
    from distinct_rows as d
    join meta.loaded_files as f on f.source_file = d.first_copy.file
),

checked as (
    select
        *,
        case
            when sku_v is null then 'null_key'
            when list_price_v is null
                or (nullif(trim(unit_cost), '') is not null and unit_cost_v is null)
                or active_v is null then 'bad_value'
            when list_price_v < 0 or unit_cost_v < 0 then 'negative_price'
        end as rule_broken
    from typed
),

key_ranked as (
    select
        *,
        case when rule_broken is null then
            row_number() over (partition by sku_v, rule_broken is null order by first_copy)
        end as key_rank
    from checked
),

final as (
    select
        load_id,
        first_copy.file as source_file,
        first_copy.row as source_row,
        copies,
        case when rule_broken is not null or key_rank > 1 then 'quarantined' else 'staged' end
            as row_status,
        coalesce(rule_broken, case when key_rank > 1 then 'duplicate_key_conflict' end) as reason,
        case coalesce(rule_broken, case when key_rank > 1 then 'duplicate_key_conflict' end)
            when 'null_key' then
                case
                    when coalesce(sku, name, category, unit_cost, list_price, active) is null
                        then 'every column is empty: a blank line or a row of empty fields'
                    else 'sku must not be empty'
                end
            when 'bad_value' then
                case
                    when list_price_v is null then 'list_price ''' || coalesce(list_price, '') || ''' is not a number'
                    when active_v is null then 'active ''' || active || ''' is not true or false'
                    else 'unit_cost ''' || unit_cost || ''' is not a number'
                end
            when 'negative_price' then 'list_price or unit_cost is negative'
            when 'duplicate_key_conflict' then 'sku ' || sku_v || ' was already loaded with different values'
        end as detail,
        case when rule_broken is not null or key_rank > 1 then to_json({
            sku: sku, name: name, category: category, unit_cost: unit_cost,
            list_price: list_price, active: active
        }) end as record,
        sku_v as sku,
        nullif(trim(name), '') as name,
        coalesce(nullif(trim(category), ''), 'uncategorised') as category,
        unit_cost_v as unit_cost,
        list_price_v as list_price,
        active_v as active
    from key_ranked
)

select * from final;

-- Filled by stg_products_derived.sql only when no catalogue landed.
create or replace table staging.derived_products (
    sku varchar, name varchar, category varchar, unit_cost decimal(18, 4),
    list_price decimal(18, 4), active boolean
);

create or replace view staging.stg_products as
select sku, name, category, unit_cost, list_price, active, false as is_derived, false as is_retired
from staging.judged_products
where row_status = 'staged'
union all
select sku, name, category, unit_cost, list_price, active, true as is_derived, false as is_retired
from staging.derived_products
union all
-- products no catalogue lists any more (staging/retire_products.sql), as inactive
select sku, name, category, unit_cost, list_price, false as active, false as is_derived, true as is_retired
from meta.retired_products
where sku not in (select sku from staging.judged_products where row_status = 'staged' and sku is not null)
    and sku not in (select sku from staging.derived_products where sku is not null);

comment on view staging.stg_products is 'Clean product catalogue, one row per sku. is_derived marks rows built from order lines because no catalogue landed.';
comment on column staging.stg_products.unit_cost is 'Cost per unit; null when unknown (features.dim_product fills a default).';
comment on column staging.stg_products.list_price is 'Catalogue price per unit.';
comment on column staging.stg_products.is_derived is 'True when the row was derived from order lines, not a landed catalogue.';
comment on column staging.stg_products.is_retired is 'True for a product a loaded catalogue listed and none lists now (meta.retired_products): kept, inactive, so that its order lines stay known.';
comment on table staging.judged_products is 'Every distinct raw products row with its verdict (row_status staged or quarantined, reason, detail) and how many exact copies arrived; stg_products is its staged rows.';
comment on table staging.derived_products is 'Products derived from order lines because no catalogue landed (empty otherwise).';
comment on column staging.judged_products.load_id is 'The run that loaded the file holding this row''s first copy.';
comment on column staging.judged_products.source_file is 'Landing file of this row''s first copy, relative to the landing folder.';
comment on column staging.judged_products.source_row is '1-based data row of the first copy in that file (the header is not counted).';
comment on column staging.judged_products.copies is 'How many exact copies of this raw row arrived, across all files: the first is judged, the other copies - 1 are counted as duplicates.';
comment on column staging.judged_products.row_status is 'staged (the row is in the stg_ view) or quarantined (it is in quarantine.rows).';
comment on column staging.judged_products.reason is 'The rule a quarantined row broke (the codes of quarantine.rows.reason); null when staged.';
comment on column staging.judged_products.detail is 'What was wrong, in words, naming the column and value; null when staged.';
comment on column staging.judged_products.record is 'The raw row as JSON, for a quarantined row; null when staged.';
comment on column staging.judged_products.sku is 'The raw sku, trimmed and typed as the contract says; null when empty or unparseable (see stg_products for its meaning).';
comment on column staging.judged_products.name is 'The raw name, trimmed and typed as the contract says; null when empty or unparseable (see stg_products for its meaning).';
comment on column staging.judged_products.category is 'The raw category, trimmed; uncategorised when empty.';
comment on column staging.judged_products.unit_cost is 'The raw unit_cost, trimmed and typed as the contract says; null when empty or unparseable (see stg_products for its meaning).';
comment on column staging.judged_products.list_price is 'The raw list_price, trimmed and typed as the contract says; null when empty or unparseable (see stg_products for its meaning).';
comment on column staging.judged_products.active is 'The raw active as a boolean (true/t/1/yes, false/f/0/no), true when the field is missing; null when unrecognised.';
comment on column staging.stg_products.sku is 'Product id; the key.';
comment on column staging.stg_products.name is 'Product name.';
comment on column staging.stg_products.category is 'Product category; uncategorised when not given.';
comment on column staging.stg_products.active is 'On sale; an inactive product is planned but not reordered or priced.';
comment on column staging.derived_products.sku is 'Product id, from the order lines.';
comment on column staging.derived_products.name is 'Null: order lines are mapped without a catalogue name.';
comment on column staging.derived_products.category is 'uncategorised: order lines carry no category.';
comment on column staging.derived_products.unit_cost is 'Null: order lines carry no cost (features.dim_product fills a default).';
comment on column staging.derived_products.list_price is 'Median positive sale price, else the median price it was returned at, else 0 (never priced).';
comment on column staging.derived_products.active is 'True when it sold within NIGHTSHIFT_ACTIVE_WINDOW_DAYS before the newest order date.';
