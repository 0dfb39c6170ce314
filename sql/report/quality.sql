-- Model quality against baseline over the last 30 nights up to $as_of.
select as_of, branch, metric, value, baseline_value, passed
from model_quality_history
where as_of <= $as_of and as_of > cast($as_of as date) - 30 and metric <> 'failed'
order by branch, metric, as_of;
