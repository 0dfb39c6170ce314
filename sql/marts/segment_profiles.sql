-- One row per segment: its size and median profile, and its centroid (the next night matches
-- its clusters to these), from the frame the segments task registers as
-- `segment_profiles_rows`.
create or replace table marts.segment_profiles as
with final as (
    select
        cast(segment_id as integer) as segment_id,
        cast(segment_name as varchar) as segment_name,
        cast(customers as bigint) as customers,
        cast(share as double) as share,
        cast(recency_days as double) as recency_days,
        cast(frequency as double) as frequency,
        cast(monetary as double) as monetary,
        cast(order_rate as double) as order_rate,
        cast(avg_units_per_order as double) as avg_units_per_order,
        cast(tenure_days as double) as tenure_days,
        cast(avg_order_value as double) as avg_order_value,
        cast(return_rate as double) as return_rate,
        cast(centroid as double[]) as centroid,
        cast($model as varchar) as model,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from segment_profiles_rows
)

select * from final
order by segment_id;

comment on table marts.segment_profiles is 'One row per customer segment tonight: size and median customer.';
comment on column marts.segment_profiles.share is 'Share of segmented customers in this segment.';
comment on column marts.segment_profiles.recency_days is 'Median days since last order.';
comment on column marts.segment_profiles.frequency is 'Median number of orders.';
comment on column marts.segment_profiles.monetary is 'Median net revenue per customer.';
comment on column marts.segment_profiles.order_rate is 'Median orders per 30 days of tenure.';
comment on column marts.segment_profiles.avg_units_per_order is 'Median of the customers'' mean units per order.';
comment on column marts.segment_profiles.tenure_days is 'Median days since first order.';
comment on column marts.segment_profiles.avg_order_value is 'Median of the customers'' mean order value.';
comment on column marts.segment_profiles.return_rate is 'Median units returned / units bought.';
comment on column marts.segment_profiles.centroid is 'The cluster centre in log1p feature space (recency, order rate, frequency, monetary, units per order, tenure); tomorrow''s segments are matched to it.';
comment on column marts.segment_profiles.model is 'nightshift-segments/N (registered model version) when the clustering passed its gate, previous_centroids when customers were assigned to the last published centres instead.';
comment on column marts.segment_profiles.segment_id is 'Stable segment id (matched to the previous night''s centroids).';
comment on column marts.segment_profiles.segment_name is 'Name from the segment''s profile by the rules in models/segments.py.';
comment on column marts.segment_profiles.customers is 'Customers in the segment tonight.';
comment on column marts.segment_profiles.as_of is 'The business date (shop timezone) of the night that produced the row; the run saw only data on or before it.';
comment on column marts.segment_profiles.run_id is 'The nightly run that produced the row (runs.run_id).';
comment on column marts.segment_profiles.mlflow_run_id is 'The MLflow run that logged the model behind the row (the branch''s child run).';
