-- After the stg_* files ran: rebuild quarantine.rows from every rule-breaking raw row and
-- write this run's row accounting. Each raw row has exactly one status, so
-- rows_in = rows_staged + rows_quarantined + rows_duplicate holds by construction and is tested.
delete from quarantine.rows;

insert into quarantine.rows
with every_check as (
    select 'orders' as source_table, load_id, source_file, source_row, row_status, reason, detail, record from chk_orders
    union all
    select 'events', load_id, source_file, source_row, row_status, reason, detail, record from chk_events
    union all
    select 'products', load_id, source_file, source_row, row_status, reason, detail, record from chk_products
    union all
    select 'inventory', load_id, source_file, source_row, row_status, reason, detail, record from chk_inventory
),

final as (
    select load_id as run_id, source_table, source_file, source_row, reason, detail, record
    from every_check
    where row_status = 'quarantined'
)

select * from final
order by source_table, source_file, source_row;

insert into meta.row_audit
with every_check as (
    select 'orders' as table_name, load_id, row_status from chk_orders
    union all
    select 'events', load_id, row_status from chk_events
    union all
    select 'products', load_id, row_status from chk_products
    union all
    select 'inventory', load_id, row_status from chk_inventory
),

tables as (
    select * from (values ('orders'), ('events'), ('products'), ('inventory')) as t(table_name)
),

counts as (
    select
        table_name,
        count(*) as rows_in,
        count(*) filter (where row_status = 'staged') as rows_staged,
        count(*) filter (where row_status = 'quarantined') as rows_quarantined,
        count(*) filter (where row_status = 'duplicate') as rows_duplicate,
        count(*) filter (where load_id = $run_id) as rows_new
    from every_check
    group by table_name
),

files as (
    select source_table as table_name, count(*) as files_loaded
    from meta.loaded_files
    where load_id = $run_id
    group by source_table
),

final as (
    select
        $run_id as run_id,
        t.table_name,
        coalesce(c.rows_in, 0) as rows_in,
        coalesce(c.rows_staged, 0) as rows_staged,
        coalesce(c.rows_quarantined, 0) as rows_quarantined,
        coalesce(c.rows_duplicate, 0) as rows_duplicate,
        coalesce(c.rows_new, 0) as rows_new,
        coalesce(f.files_loaded, 0) as files_loaded,
        now() as audited_at
    from tables as t
    left join counts as c using (table_name)
    left join files as f using (table_name)
)

select * from final;
