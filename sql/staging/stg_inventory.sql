-- Inventory snapshots: one status per distinct raw row (exact copies are duplicates), then the clean snapshots, one per (sku, as_of).
create or replace table staging.judged_inventory as
with hashed as not materialized (
    -- the raw archive: one Parquet file per loaded landing file (tasks/ingest.py)
    select *, hash(sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of) as row_hash
    from read_parquet($raw_inventory_files)
),

repeated_hashes as (
    select row_hash from hashed group by row_hash having count(*) > 1
),

-- Exact copies share a hash, so only rows whose hash repeats can be duplicates; grouping
-- those few by every column keeps the check exact (a hash collision stays two rows), while
-- the unique majority skips the costly group-by over all text columns.
distinct_rows as (
    select
        sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of,
        {'file': source_file, 'row': source_row} as first_copy,
        1 as copies
    from hashed
    anti join repeated_hashes using (row_hash)
    union all
    select
        sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of,
        min({'file': source_file, 'row': source_row}) as first_copy,
        count(*) as copies
    from hashed
    semi join repeated_hashes using (row_hash)
    group by sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of
),

typed as (
    select
        d.*,
        f.load_id,
        nullif(trim(d.sku), '') as sku_v,
        case when regexp_full_match(trim(d.on_hand), '[+-]?[0-9]+')
            then try_cast(trim(d.on_hand) as bigint) end as on_hand_v,
        case when nullif(trim(d.on_order), '') is null then 0
            when regexp_full_match(trim(d.on_order), '[+-]?[0-9]+')
            then try_cast(trim(d.on_order) as bigint) end as on_order_v,
        case when nullif(trim(d.lead_time_days), '') is null then cast($default_lead_time_days as bigint)
            when regexp_full_match(trim(d.lead_time_days), '[+-]?[0-9]+')
            then try_cast(trim(d.lead_time_days) as bigint) end as lead_time_days_v,
        try_cast(trim(d.lead_time_std_days) as double) as lead_time_std_days_v,
        try_cast(trim(d.as_of) as date) as as_of_v,
        catalogue.sku is null as sku_not_in_catalogue
    from distinct_rows as d
    join meta.loaded_files as f on f.source_file = d.first_copy.file
    left join staging.stg_products as catalogue on catalogue.sku = trim(d.sku)
),

checked as (
    select
        *,
        case
            when sku_v is null or nullif(trim(as_of), '') is null then 'null_key'
            when on_hand_v is null or on_order_v is null or lead_time_days_v is null
                or (nullif(trim(lead_time_std_days), '') is not null and lead_time_std_days_v is null)
                then 'bad_value'
            when as_of_v is null then 'bad_timestamp'
            when $catalogue_provided and sku_not_in_catalogue then 'unknown_sku'
        end as rule_broken
    from typed
),

key_ranked as (
    select
        *,
        case when rule_broken is null then
            row_number() over (partition by sku_v, as_of_v, rule_broken is null order by first_copy)
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
                    when coalesce(sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of) is null
                        then 'every column is empty: a blank line or a row of empty fields'
                    else 'sku and as_of must not be empty'
                end
            when 'bad_value' then 'on_hand, on_order, lead_time_days must be integers and lead_time_std_days a number'
            when 'bad_timestamp' then 'as_of ''' || as_of || ''' is not a date'
            when 'unknown_sku' then 'sku ''' || sku_v || ''' is not in the product catalogue'
            when 'duplicate_key_conflict' then 'sku ' || sku_v || ' as_of ' || as_of_v
                || ' was already loaded with different values'
        end as detail,
        case when rule_broken is not null or key_rank > 1 then to_json({
            sku: sku, on_hand: on_hand, on_order: on_order, lead_time_days: lead_time_days,
            lead_time_std_days: lead_time_std_days, as_of: as_of
        }) end as record,
        sku_v as sku,
        on_hand_v as on_hand,
        on_order_v as on_order,
        lead_time_days_v as lead_time_days,
        lead_time_std_days_v as lead_time_std_days,
        as_of_v as as_of
    from key_ranked
)

select * from final;

create or replace view staging.stg_inventory as
select sku, on_hand, on_order, lead_time_days, lead_time_std_days, as_of
from staging.judged_inventory
where row_status = 'staged';

comment on view staging.stg_inventory is 'Clean inventory snapshots, one row per (sku, as_of). Empty when no inventory landed.';
comment on column staging.stg_inventory.on_hand is 'Units in stock at the snapshot.';
comment on column staging.stg_inventory.on_order is 'Units ordered from suppliers, not yet received (0 when not given).';
comment on column staging.stg_inventory.lead_time_days is 'Supplier lead time in days (the configured default when not given).';
comment on column staging.stg_inventory.lead_time_std_days is 'Standard deviation of the lead time in days; null when unknown.';
comment on table staging.judged_inventory is 'Every distinct raw inventory row with its verdict (row_status staged or quarantined, reason, detail) and how many exact copies arrived; stg_inventory is its staged rows.';
comment on column staging.judged_inventory.load_id is 'The run that loaded the file holding this row''s first copy.';
comment on column staging.judged_inventory.source_file is 'Landing file of this row''s first copy, relative to the landing folder.';
comment on column staging.judged_inventory.source_row is '1-based data row of the first copy in that file (the header is not counted).';
comment on column staging.judged_inventory.copies is 'How many exact copies of this raw row arrived, across all files: the first is judged, the other copies - 1 are counted as duplicates.';
comment on column staging.judged_inventory.row_status is 'staged (the row is in the stg_ view) or quarantined (it is in quarantine.rows).';
comment on column staging.judged_inventory.reason is 'The rule a quarantined row broke (the codes of quarantine.rows.reason); null when staged.';
comment on column staging.judged_inventory.detail is 'What was wrong, in words, naming the column and value; null when staged.';
comment on column staging.judged_inventory.record is 'The raw row as JSON, for a quarantined row; null when staged.';
comment on column staging.judged_inventory.sku is 'The raw sku, trimmed and typed as the contract says; null when empty or unparseable (see stg_inventory for its meaning).';
comment on column staging.judged_inventory.on_hand is 'The raw on_hand, trimmed and typed as the contract says; null when empty or unparseable (see stg_inventory for its meaning).';
comment on column staging.judged_inventory.on_order is 'The raw on_order typed as an integer, 0 when empty; null when unparseable.';
comment on column staging.judged_inventory.lead_time_days is 'The raw lead_time_days typed as an integer, NIGHTSHIFT_DEFAULT_LEAD_TIME_DAYS when empty; null when unparseable.';
comment on column staging.judged_inventory.lead_time_std_days is 'The raw lead_time_std_days, trimmed and typed as the contract says; null when empty or unparseable (see stg_inventory for its meaning).';
comment on column staging.judged_inventory.as_of is 'The raw as_of, trimmed and typed as the contract says; null when empty or unparseable (see stg_inventory for its meaning).';
comment on column staging.stg_inventory.sku is 'Product the snapshot is for.';
comment on column staging.stg_inventory.as_of is 'Date of the snapshot.';
