update meta.runs
set
    status = $status,
    finished_at = $finished_at,
    mlflow_run_id = coalesce($mlflow_run_id, mlflow_run_id),
    input_digests = coalesce(cast($input_digests as json), input_digests),
    row_counts = coalesce(cast($row_counts as json), row_counts),
    defaults_used = coalesce(cast($defaults_used as varchar[]), defaults_used),
    error = coalesce($error, error)
where run_id = $run_id;
