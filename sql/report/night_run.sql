-- The latest run that published the night $as_of, and the defaults it had to apply.
select run_id, defaults_used from runs where as_of = $as_of order by started_at desc limit 1;
