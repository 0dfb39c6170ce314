-- The published customer segments: one row per customer with a purchase by as_of, from the
-- frame the segments task registers as `customer_segments_rows`, stamped with lineage.
create or replace table marts.customer_segments as
with final as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(segment_id as integer) as segment_id,
        cast(segment_name as varchar) as segment_name,
        cast(recency_days as integer) as recency_days,
        cast(frequency as integer) as frequency,
        cast(monetary as double) as monetary,
        cast(pca_x as double) as pca_x,
        cast(pca_y as double) as pca_y,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from customer_segments_rows
)

select * from final
order by customer_id;

comment on table marts.customer_segments is 'Each customer''s segment tonight: KMeans over log-scaled recency, order rate, frequency, monetary, units per order and tenure.';
comment on column marts.customer_segments.segment_id is 'Stable id: tonight''s clusters are matched to the previous published ones (Hungarian assignment on centroid distance), so an id keeps its meaning night to night.';
comment on column marts.customer_segments.segment_name is 'Name from the segment''s median profile by the rules in models/segments.py (champions, loyal, new, at risk, hibernating, big spenders, occasional, regulars).';
comment on column marts.customer_segments.recency_days is 'Days from the customer''s last order to as_of.';
comment on column marts.customer_segments.frequency is 'Orders with a purchased line.';
comment on column marts.customer_segments.monetary is 'Net revenue: purchases minus returns.';
comment on column marts.customer_segments.pca_x is 'First principal component of the scaled features, for scatter plots.';
comment on column marts.customer_segments.pca_y is 'Second principal component of the scaled features.';
comment on column marts.customer_segments.mlflow_run_id is 'The MLflow child run of the segments branch that night.';
comment on column marts.customer_segments.customer_id is 'The customer, as in the orders landing files.';
comment on column marts.customer_segments.as_of is 'The business date (shop timezone) of the night that produced the row; the run saw only data on or before it.';
comment on column marts.customer_segments.run_id is 'The nightly run that produced the row (runs.run_id).';
