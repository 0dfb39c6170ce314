-- An increment: the rows of the files that changed since the last build (added, corrected,
-- or archived again) and of the versions they replace decide which verdicts can change.
-- A judged row's own verdict can change only if one of its copies arrived or left, and
-- every copy shares its hash: so the verdicts of the rows with those hashes are taken out,
-- and stg_events.sql judges the changed files again together with the copies of those
-- rows in the files that did not change.
-- On a full build ($judge_every_row) nothing is taken out and the batch is every file.
create or replace temp table changed_hashes as
select distinct hash(user_id, session_id, sku, event_type, ts) as row_hash
from read_parquet($changed_events_files)
where not $judge_every_row;

create or replace temp table unchanged_copies as
select *
from (
    select *, hash(user_id, session_id, sku, event_type, ts) as row_hash
    from read_parquet($unchanged_events_files)
    where not $judge_every_row
)
semi join changed_hashes using (row_hash);

delete from staging.judged_events
where row_hash in (select row_hash from changed_hashes);
