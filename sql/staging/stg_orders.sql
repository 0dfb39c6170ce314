-- Orders: give every raw order line exactly one status — staged, quarantined (with the first
-- rule it breaks) or duplicate (an exact copy of an earlier line) — then stage the good ones.
-- Rules are judged once per distinct line: exact copies share content, so they share a
-- verdict, and all but the first copy (by file name, row) count as duplicates.
-- Returns (quantity < 0 with a price) are kept: they reduce net demand.
-- Rule order matters and is the contract: see README "Row rules".
-- A batch is judged: every archive file on a full build; on an increment, the files that
-- changed and the copies elsewhere of the lines whose verdicts staging/take_back_orders.sql
-- took out.
insert into staging.judged_orders by name
with hashed as not materialized (
    select * from unchanged_copies
    union all
    -- the raw archive: one Parquet file per loaded landing file (tasks/ingest.py)
    select *, hash(order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel) as row_hash
    from read_parquet($batch_orders_files)
),

repeated_hashes as (
    select row_hash from hashed group by row_hash having count(*) > 1
),

-- Exact copies share a hash, so only rows whose hash repeats can be duplicates; grouping
-- those few by every column keeps the check exact (a hash collision stays two rows), while
-- the unique majority skips the costly group-by over all text columns.
distinct_rows as (
    select
        order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel, row_hash,
        {'file': source_file, 'row': source_row} as first_copy,
        1 as copies
    from hashed
    anti join repeated_hashes using (row_hash)
    union all
    select
        order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel, row_hash,
        min({'file': source_file, 'row': source_row}) as first_copy,
        count(*) as copies
    from hashed
    semi join repeated_hashes using (row_hash)
    group by order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel, row_hash
),

typed as (
    select
        d.*,
        f.load_id,
        f.loaded_at,
        nullif(trim(d.order_id), '') as order_id_v,
        nullif(trim(d.sku), '') as sku_v,
        nullif(trim(d.customer_id), '') as customer_id_v,
        case when regexp_full_match(trim(d.line_no), '[+-]?[0-9]+')
            then try_cast(trim(d.line_no) as bigint) end as line_no_v,
        case when regexp_full_match(trim(d.quantity), '[+-]?[0-9]+')
            then try_cast(trim(d.quantity) as bigint) end as quantity_v,
        try_cast(trim(d.unit_price) as decimal(18, 4)) as unit_price_v,
        try_cast(trim(d.ordered_at) as timestamptz) as ordered_at_v,
        catalogue.sku is null as sku_not_in_catalogue
    from distinct_rows as d
    join meta.loaded_files as f on f.source_file = d.first_copy.file
    left join staging.stg_products as catalogue on catalogue.sku = trim(d.sku)
),

checked as (
    select
        *,
        case
            when order_id_v is null then 'null_key'
            when nullif(trim(line_no), '') is null then 'null_key'
            when sku_v is null then 'null_key'
            when line_no_v is null or quantity_v is null or unit_price_v is null then 'bad_value'
            when ordered_at_v is null then 'bad_timestamp'
            when ordered_at_v > loaded_at + to_hours($future_tolerance_hours) then 'future_timestamp'
            when regexp_full_match(sku_v, $non_product_pattern) then 'non_product_sku'
            when unit_price_v < 0 then 'negative_price'
            when unit_price_v = 0 and customer_id_v is null then 'stock_adjustment'
            when $catalogue_provided and sku_not_in_catalogue then 'unknown_sku'
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
                    when coalesce(order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel) is null
                        then 'every column is empty: a blank line or a row of empty fields'
                    else 'order_id, line_no and sku must not be empty'
                end
            when 'bad_value' then
                case
                    when line_no_v is null then 'line_no ''' || line_no || ''' is not an integer'
                    when quantity_v is null then 'quantity ''' || coalesce(quantity, '') || ''' is not an integer'
                    else 'unit_price ''' || coalesce(unit_price, '') || ''' is not a number'
                end
            when 'bad_timestamp' then 'ordered_at ''' || coalesce(ordered_at, '') || ''' is not a timestamp'
            when 'future_timestamp' then 'ordered_at ' || ordered_at || ' is after the file was loaded'
            when 'non_product_sku' then 'sku ''' || sku_v || ''' is a fee, postage or adjustment code, not a product'
            when 'negative_price' then 'unit_price ' || unit_price || ' is negative'
            when 'stock_adjustment' then 'zero price and no customer: a stock write-off or correction, not demand'
            when 'unknown_sku' then 'sku ''' || sku_v || ''' is not in the product catalogue'
        end as detail,
        case when reason is not null then to_json({
            order_id: order_id, line_no: line_no, customer_id: customer_id, sku: sku,
            quantity: quantity, unit_price: unit_price, ordered_at: ordered_at,
            country: country, channel: channel
        }) end as record,
        order_id_v as order_id,
        line_no_v as line_no,
        customer_id_v as customer_id,
        sku_v as sku,
        quantity_v as quantity,
        unit_price_v as unit_price,
        ordered_at_v as ordered_at,
        cast(ordered_at_v as date) as order_date,
        nullif(trim(country), '') as country,
        nullif(trim(channel), '') as channel
    from checked
)

select * from final;

-- Key conflicts: a key (order_id, line_no) staged from two different lines keeps the first
-- line by (file, row); the others are quarantined. Judged after the table is written, on its
-- staged keys alone: a window over every line in the statement above carried all of its
-- columns through a sort (a third of the statement's time on `medium`). Only keys whose
-- hash repeats are ranked, and the raw text of the few losers is read back for `record`.
-- Ranked over every line on every build, not the batch: a line an increment adds can win a
-- judged line's key, and a corrected file can take away the line that won one. A line loses
-- its key only after passing every other rule, so the losers are staged again first.
update staging.judged_orders
set row_status = 'staged', reason = null, detail = null, record = null
where reason = 'duplicate_key_conflict';

update staging.judged_orders as judged
set
    row_status = 'quarantined',
    reason = 'duplicate_key_conflict',
    detail = 'order ' || judged.order_id || ' line ' || judged.line_no
        || ' was already loaded with different values',
    record = losers.record
from (
    with staged_keys as not materialized (
        select order_id, line_no, source_file, source_row, hash(order_id, line_no) as key_hash
        from staging.judged_orders
        where row_status = 'staged'
    ),

    repeated_key_hashes as (
        select key_hash from staged_keys group by key_hash having count(*) > 1
    ),

    ranked as (
        select
            source_file,
            source_row,
            row_number() over (
                partition by order_id, line_no order by source_file, source_row
            ) as key_rank
        from staged_keys
        semi join repeated_key_hashes using (key_hash)
    ),

    raw as (
        select * from read_parquet($raw_orders_files)
    )

    select
        ranked.source_file,
        ranked.source_row,
        to_json({
            order_id: raw.order_id, line_no: raw.line_no, customer_id: raw.customer_id,
            sku: raw.sku, quantity: raw.quantity, unit_price: raw.unit_price,
            ordered_at: raw.ordered_at, country: raw.country, channel: raw.channel
        }) as record
    from ranked
    join raw using (source_file, source_row)
    where ranked.key_rank > 1
) as losers
where judged.source_file = losers.source_file and judged.source_row = losers.source_row;
