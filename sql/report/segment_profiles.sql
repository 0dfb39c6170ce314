select segment_id, segment_name, customers, round(share, 3) as share,
       round(recency_days) as recency_days, round(frequency, 1) as frequency,
       round(monetary, 2) as monetary
from segment_profiles_history
where as_of = $as_of
order by segment_id;
