insert into meta.runs (
    run_id, flow_run_id, as_of, source, models, full_refresh, started_at, status, code_version
)
values (
    $run_id, $flow_run_id, $as_of, $source, cast($models as varchar[]), $full_refresh,
    $started_at, 'running', $code_version
);
