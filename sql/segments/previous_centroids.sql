-- The centroids of the last published segments (run against marts.duckdb): tonight's
-- clusters are matched to these so segment ids keep their meaning.
select segment_id, segment_name, centroid
from segment_profiles
order by segment_id;
