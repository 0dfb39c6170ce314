-- An increment adds new archive files to judged_orders. A new line that copies a judged line
-- exactly changes that line's copies and perhaps its first copy (a new file can sort
-- first), so the judged lines whose hash a new line shares are taken out here and judged
-- again with the batch, weighted by the copies they stood for (stg_orders.sql).
create or replace temp table taken_back_rows as
select judged.source_file, judged.source_row, judged.copies
from staging.judged_orders as judged
semi join (
    select hash(order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, country, channel) as row_hash
    from read_parquet($raw_orders_files)
) as batch using (row_hash);

delete from staging.judged_orders as judged
using taken_back_rows as taken
where judged.source_file = taken.source_file and judged.source_row = taken.source_row;
