-- An increment: the lines of the files that changed since the last build (added, corrected,
-- or archived again) and of the versions they replace decide which verdicts can change.
-- A judged line's own verdict can change only if one of its copies arrived or left, and
-- every copy shares its hash: so the verdicts of the lines with those hashes are taken out,
-- and stg_orders.sql judges the changed files again together with the copies of those
-- lines in the files that did not change (and ranks key conflicts again over every line).
-- On a full build ($judge_every_row) nothing is taken out and the batch is every file.
create or replace temp table changed_hashes as
select distinct hash(order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel) as row_hash
from read_parquet($changed_orders_files)
where not $judge_every_row;

create or replace temp table unchanged_copies as
select *
from (
    select *, hash(order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel) as row_hash
    from read_parquet($unchanged_orders_files)
    where not $judge_every_row
)
semi join changed_hashes using (row_hash);

delete from staging.judged_orders
where row_hash in (select row_hash from changed_hashes);
