-- Events: one status per distinct raw click-stream row, then the clean events. Events have
-- no key, so only exact copies are duplicates (all but the first copy by file name, row).
-- A batch is judged: every archive file on a full build; on an increment, the files that
-- changed and the copies elsewhere of the rows whose verdicts staging/take_back_events.sql
-- took out.
insert into staging.judged_events by name
with hashed as not materialized (
    select * from unchanged_copies
    union all
    -- the raw archive: one Parquet file per loaded landing file (tasks/ingest.py)
    select *, hash(user_id, session_id, sku, event_type, ts) as row_hash
    from read_parquet($batch_events_files)
),

repeated_hashes as (
    select row_hash from hashed group by row_hash having count(*) > 1
),

-- Exact copies share a hash, so only rows whose hash repeats can be duplicates; grouping
-- those few by every column keeps the check exact (a hash collision stays two rows), while
-- the unique majority skips the costly group-by over all text columns.
distinct_rows as (
    select
        user_id, session_id, sku, event_type, ts, row_hash,
        {'file': source_file, 'row': source_row} as first_copy,
        1 as copies
    from hashed
    anti join repeated_hashes using (row_hash)
    union all
    select
        user_id, session_id, sku, event_type, ts, row_hash,
        min({'file': source_file, 'row': source_row}) as first_copy,
        count(*) as copies
    from hashed
    semi join repeated_hashes using (row_hash)
    group by user_id, session_id, sku, event_type, ts, row_hash
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
        row_hash,
        copies,
        case when reason is null then 'staged' else 'quarantined' end as row_status,
        reason,
        case reason
            when 'null_key' then
                case
                    when coalesce(user_id, session_id, sku, event_type, ts) is null
                        then 'every column is empty: a blank line or a row of empty fields'
                    else 'user_id and session_id must not be empty'
                end
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
