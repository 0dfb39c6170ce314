-- The night's model quality: each branch's headline metrics beside its baseline's, and
-- whether the branch passed its gate, from the frame the flow registers as
-- `model_quality_rows`.
create or replace table marts.model_quality as
with final as (
    select
        cast($run_id as varchar) as run_id,
        cast(branch as varchar) as branch,
        cast(model as varchar) as model,
        cast(metric as varchar) as metric,
        cast(value as double) as value,
        cast(baseline_value as double) as baseline_value,
        cast(passed as boolean) as passed,
        cast(gate as varchar) as gate,
        cast(mlflow_run_id as varchar) as mlflow_run_id,
        cast($as_of as date) as as_of
    from model_quality_rows
)

select * from final
order by branch, metric;

comment on table marts.model_quality is 'Per night and model branch: headline metrics against the baseline and the gate result. A branch that failed has one row, metric = failed, passed = false.';
comment on column marts.model_quality.model is 'What the branch published: a registered model version, baseline, current_price, previous_centroids, or failed.';
comment on column marts.model_quality.value is 'The model''s value of the metric on the branch''s holdout or backtest.';
comment on column marts.model_quality.baseline_value is 'The baseline''s value of the same metric (popularity, seasonal naive, the target service level, random labels, current prices), where one exists.';
comment on column marts.model_quality.passed is 'True when the model passed its gate and was promoted.';
comment on column marts.model_quality.gate is 'The gate''s verdict in words (or the error of a failed branch).';
comment on column marts.model_quality.run_id is 'The nightly run that produced the row (runs.run_id).';
comment on column marts.model_quality.branch is 'The model branch: recommender, demand, inventory, segments or pricing.';
comment on column marts.model_quality.metric is 'The metric the branch reports against its baseline (e.g. ndcg_at_20, mase, service_level_all, silhouette, expected_profit); failed when the branch raised.';
comment on column marts.model_quality.mlflow_run_id is 'The MLflow run that logged the model behind the row (the branch''s child run).';
comment on column marts.model_quality.as_of is 'The business date (shop timezone) of the night that produced the row; the run saw only data on or before it.';
