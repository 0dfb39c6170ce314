-- After the stg_* files judged rows: rebuild quarantine.rows from every rule-breaking
-- distinct row and every unparsed CSV record. Skipped when nothing was judged: the verdicts, and so this table, are the
-- same (on `large` the rewrite of 2M quarantined rows cost 10 s of an unchanged night).
delete from quarantine.rows;

insert into quarantine.rows
with every_check as (
    select 'orders' as source_table, load_id, source_file, source_row, row_status, reason, detail, record from staging.judged_orders
    union all
    select 'events', load_id, source_file, source_row, row_status, reason, detail, record from staging.judged_events
    union all
    select 'products', load_id, source_file, source_row, row_status, reason, detail, record from staging.judged_products
    union all
    select 'inventory', load_id, source_file, source_row, row_status, reason, detail, record from staging.judged_inventory
    union all
    -- CSV records that could not be parsed into columns never reach the judged tables
    select u.source_table, f.load_id, u.source_file, u.source_row, 'quarantined', u.reason, u.detail, to_json({text: u.text})
    from meta.unparsed_rows as u
    join meta.loaded_files as f using (source_file)
),

final as (
    select load_id as run_id, source_table, source_file, source_row, reason, detail, record
    from every_check
    where row_status = 'quarantined'
)

select * from final
order by source_table, source_file, source_row;
