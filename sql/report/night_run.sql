-- The latest run that published the night $as_of.
select run_id from runs where as_of = $as_of order by started_at desc limit 1;
