-- Runs still 'running' when a new run holds the home's lock cannot be alive (the lock is held
-- for a run's whole life and the kernel drops it when the process dies): they were killed.
update meta.runs
set
    status = 'abandoned',
    finished_at = $finished_at,
    error = coalesce(error, $reason)
where status = 'running'
returning run_id, as_of, flow_run_id;
