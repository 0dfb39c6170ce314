-- The published `runs` table: every run, newest first, as analysts read it. Its descriptions
-- are meta.runs's, copied by tasks/publish.py.
create or replace table marts.runs as
with final as (
    select
        run_id, flow_run_id, as_of, source, models, full_refresh, started_at, finished_at,
        status, input_digests, row_counts, defaults_used, mlflow_run_id, code_version, error
    from meta.runs
)

select * from final
order by started_at desc;
