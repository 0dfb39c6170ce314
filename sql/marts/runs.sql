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
comment on column marts.runs.status is 'running, succeeded, degraded (a model branch failed and its tables kept the previous rows), failed, or abandoned (the process was killed before it finished).';
comment on column marts.runs.input_digests is 'Per input table, a SHA-256 over the (file, digest) pairs loaded: same digest, same input.';
comment on column marts.runs.row_counts is 'Per input table: rows_in, rows_staged, rows_quarantined, rows_duplicate, rows_new.';
comment on column marts.runs.defaults_used is 'Defaults the run had to apply because data was missing (derived catalogue, default cost, default inventory, no events).';
comment on column marts.runs.flow_run_id is 'The Prefect flow run (open it in the Prefect UI); NULL for CLI ingests.';
comment on column marts.runs.run_id is 'Sortable unique id: business date, UTC start time, random suffix.';
comment on column marts.runs.as_of is 'The business date the run covered; NULL for a plain ingest.';
comment on column marts.runs.source is 'What was loaded: landing, or online-retail:<file>.';
comment on column marts.runs.models is 'The model branches the run was asked to run.';
comment on column marts.runs.full_refresh is 'Whether every landing file was reloaded from scratch.';
comment on column marts.runs.started_at is 'When the run started (UTC).';
comment on column marts.runs.finished_at is 'When the run ended (UTC); NULL while running.';
comment on column marts.runs.mlflow_run_id is 'The night''s MLflow parent run.';
comment on column marts.runs.code_version is 'nightshift version and git commit that ran.';
comment on column marts.runs.error is 'Why the run failed, or which branches failed when degraded.';
