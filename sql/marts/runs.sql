-- The published `runs` table: every run, newest first, as analysts read it.
create or replace table marts.runs as
with final as (
    select
        run_id, flow_run_id, as_of, source, models, full_refresh, started_at, finished_at,
        status, input_digests, row_counts, defaults_used, mlflow_run_id, code_version, error
    from meta.runs
)

select * from final
order by started_at desc;

comment on table marts.runs is 'One row per run: what ran (models, code_version), on what data (input_digests, row_counts), with what result (status, error) and which defaults were used.';
comment on column marts.runs.status is 'running, succeeded, failed (or degraded when a model branch fell back).';
comment on column marts.runs.input_digests is 'Per input table, a SHA-256 over the (file, digest) pairs loaded: same digest, same input.';
comment on column marts.runs.row_counts is 'Per input table: rows_in, rows_staged, rows_quarantined, rows_duplicate, rows_new.';
comment on column marts.runs.defaults_used is 'Defaults the run had to apply because data was missing (derived catalogue, default cost, default inventory, no events).';
