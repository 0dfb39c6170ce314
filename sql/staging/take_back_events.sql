-- An increment adds new archive files to judged_events. A new row that copies a judged row
-- exactly changes that row's copies and perhaps its first copy (a new file can sort
-- first), so the judged rows whose hash a new row shares are taken out here and judged
-- again with the batch, weighted by the copies they stood for (stg_events.sql).
create or replace temp table taken_back_rows as
select judged.source_file, judged.source_row, judged.copies
from staging.judged_events as judged
semi join (
    select hash(user_id, session_id, sku, event_type, ts) as row_hash
    from read_parquet($raw_events_files)
) as batch using (row_hash);

delete from staging.judged_events as judged
using taken_back_rows as taken
where judged.source_file = taken.source_file and judged.source_row = taken.source_row;
