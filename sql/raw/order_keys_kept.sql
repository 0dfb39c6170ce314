-- A changed orders file against the version it replaces: how many order keys the old one
-- held, and how many of them the new one still holds. A correction keeps its keys; a new
-- day's export written over yesterday's under the same name keeps none, and replacing the
-- old version would drop every line it held (tasks/ingest.py stops instead).
with old_keys as (
    select distinct trim(order_id) as order_id, trim(line_no) as line_no
    from read_parquet($old_archive_file)
    where nullif(trim(order_id), '') is not null
),

new_keys as (
    select distinct trim(order_id) as order_id, trim(line_no) as line_no
    from read_parquet($new_archive_file)
)

select
    (select count(*) from old_keys) as old_keys,
    (select count(*) from old_keys semi join new_keys using (order_id, line_no)) as kept_keys;
