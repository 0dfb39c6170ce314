-- A new warehouse takes back the run history that the published marts (attached as
-- `previous`) hold: the finished runs its lost warehouse had recorded up to the last publish.
insert into meta.runs by name
select
    run_id, flow_run_id, as_of, source, models, full_refresh, started_at, finished_at,
    status, input_digests, row_counts, defaults_used, mlflow_run_id, code_version, error
from previous.main.runs
where finished_at is not null
    and run_id not in (select run_id from meta.runs);
