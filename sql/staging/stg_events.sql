-- Events: one status per distinct raw click-stream row, then the clean events. Events have
-- no key, so only exact copies are duplicates (all but the first copy by file name, row).
create or replace table staging.judged_events as
with hashed as not materialized (
    -- the raw archive: one Parquet file per loaded landing file (tasks/ingest.py)
    select *, hash(user_id, session_id, sku, event_type, ts) as row_hash
    from read_parquet($raw_events_files)
),

repeated_hashes as (
    select row_hash from hashed group by row_hash having count(*) > 1
),

-- Exact copies share a hash, so only rows whose hash repeats can be duplicates; grouping
-- those few by every column keeps the check exact (a hash collision stays two rows), while
-- the unique majority skips the costly group-by over all text columns.
distinct_rows as (
    select
        user_id, session_id, sku, event_type, ts,
        {'file': source_file, 'row': source_row} as first_copy,
        1 as copies
    from hashed
    anti join repeated_hashes using (row_hash)
    union all
    select
        user_id, session_id, sku, event_type, ts,
        min({'file': source_file, 'row': source_row}) as first_copy,
        count(*) as copies
    from hashed
    semi join repeated_hashes using (row_hash)
    group by user_id, session_id, sku, event_type, ts
),

typed as (
    select
        d.*,
        f.load_id,
        f.loaded_at,
        nullif(trim(d.user_id), '') as user_id_v,
        nullif(trim(d.session_id), '') as session_id_v,
        nullif(trim(d.sku), '') as sku_v,
        lower(trim(d.event_type)) as event_type_v,
        try_cast(trim(d.ts) as timestamptz) as ts_v,
        catalogue.sku is null as sku_not_in_catalogue
    from distinct_rows as d
    join meta.loaded_files as f on f.source_file = d.first_copy.file
    left join staging.stg_products as catalogue on catalogue.sku = trim(d.sku)
),

checked as (
    select
        *,
        case
            when user_id_v is null or session_id_v is null then 'null_key'
            when ts_v is null then 'bad_timestamp'
            when ts_v > loaded_at + to_hours($future_tolerance_hours) then 'future_timestamp'
            when event_type_v is null
                or event_type_v not in ('impression', 'view', 'add_to_cart', 'purchase') then 'bad_event_type'
            when sku_v is not null and $catalogue_provided and sku_not_in_catalogue then 'unknown_sku'
        end as reason
    from typed
),

final as (
    select
        load_id,
        first_copy.file as source_file,
        first_copy.row as source_row,
        copies,
        case when reason is null then 'staged' else 'quarantined' end as row_status,
        reason,
        case reason
            when 'null_key' then 'user_id and session_id must not be empty'
            when 'bad_timestamp' then 'ts ''' || coalesce(ts, '') || ''' is not a timestamp'
            when 'future_timestamp' then 'ts ' || ts || ' is after the file was loaded'
            when 'bad_event_type' then 'event_type ''' || coalesce(event_type, '')
                || ''' is not one of impression, view, add_to_cart, purchase'
            when 'unknown_sku' then 'sku ''' || sku_v || ''' is not in the product catalogue'
        end as detail,
        case when reason is not null then
            to_json({user_id: user_id, session_id: session_id, sku: sku, event_type: event_type, ts: ts})
        end as record,
        user_id_v as user_id,
        session_id_v as session_id,
        sku_v as sku,
        event_type_v as event_type,
        ts_v as ts,
        cast(ts_v as date) as event_date
    from checked
)

select * from final;

create or replace view staging.stg_events as
select user_id, session_id, sku, event_type, ts, event_date
from staging.judged_events
where row_status = 'staged';

comment on view staging.stg_events is 'Clean click-stream events.';
comment on column staging.stg_events.user_id is 'Visitor id; equals customer_id for signed-in customers.';
comment on column staging.stg_events.event_type is 'impression, view, add_to_cart or purchase.';
comment on column staging.stg_events.ts is 'When the event happened (stored as UTC).';
comment on column staging.stg_events.event_date is 'Business date of the event in the shop timezone.';
comment on table staging.judged_events is 'Every distinct raw events row with its verdict (row_status staged or quarantined, reason, detail) and how many exact copies arrived; stg_events is its staged rows.';
