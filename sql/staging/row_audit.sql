-- This run's row accounting, from the judged tables. Each distinct row is staged or
-- quarantined and its other `copies - 1` copies are duplicates, so rows_in = rows_staged +
-- rows_quarantined + rows_duplicate holds by construction; the tests check it against
-- planted counts.
insert into meta.row_audit
with every_check as (
    select 'orders' as table_name, row_status, copies from staging.judged_orders
    union all
    select 'events', row_status, copies from staging.judged_events
    union all
    select 'products', row_status, copies from staging.judged_products
    union all
    select 'inventory', row_status, copies from staging.judged_inventory
    union all
    -- an unparsed CSV record is quarantined as it is: it has no columns to find copies by
    select source_table, 'quarantined', 1 from meta.unparsed_rows
),

tables as (
    select * from (values ('orders'), ('events'), ('products'), ('inventory')) as t(table_name)
),

counts as (
    select
        table_name,
        sum(copies) as rows_in,
        count(*) filter (where row_status = 'staged') as rows_staged,
        count(*) filter (where row_status = 'quarantined') as rows_quarantined,
        sum(copies - 1) as rows_duplicate
    from every_check
    group by table_name
),

files as (
    select
        source_table as table_name,
        sum(rows_loaded) filter (where load_id = $run_id) as rows_new,
        count(*) filter (where load_id = $run_id) as files_loaded
    from meta.loaded_files
    group by source_table
),

final as (
    select
        $run_id as run_id,
        t.table_name,
        cast(coalesce(c.rows_in, 0) as bigint) as rows_in,
        coalesce(c.rows_staged, 0) as rows_staged,
        coalesce(c.rows_quarantined, 0) as rows_quarantined,
        cast(coalesce(c.rows_duplicate, 0) as bigint) as rows_duplicate,
        cast(coalesce(f.rows_new, 0) as bigint) as rows_new,
        coalesce(f.files_loaded, 0) as files_loaded,
        now() as audited_at
    from tables as t
    left join counts as c using (table_name)
    left join files as f using (table_name)
)

select * from final;
