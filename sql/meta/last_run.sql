-- The newest run on this home: what an on-call engineer checks first.
select run_id, as_of, status, started_at, finished_at, error
from meta.runs
order by started_at desc
limit 1;
