-- The published demand forecast: p10/p50/p90 units per active SKU for the days after
-- as_of, from the frame the demand task registers as `demand_forecast_rows`, with lineage.
create or replace table marts.demand_forecast as
with final as (
    select
        cast(sku as varchar) as sku,
        cast(date as date) as date,
        cast(horizon_day as integer) as horizon_day,
        cast(p10 as double) as p10,
        cast(p50 as double) as p50,
        cast(p90 as double) as p90,
        cast(is_fallback as boolean) as is_fallback,
        case when is_fallback then 'category_profile' else cast($model as varchar) end as model,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from demand_forecast_rows
)

select * from final
order by sku, date;

comment on table marts.demand_forecast is 'Daily demand quantiles per active SKU for the horizon after as_of (28 days by default).';
comment on column marts.demand_forecast.sku is 'The product.';
comment on column marts.demand_forecast.date is 'The forecast day (business date).';
comment on column marts.demand_forecast.horizon_day is '1 = the day after as_of.';
comment on column marts.demand_forecast.p10 is 'Net units: 10% of days should sell less than this.';
comment on column marts.demand_forecast.p50 is 'Net units: the median forecast.';
comment on column marts.demand_forecast.p90 is 'Net units: 90% of days should sell less than this; plan stock against it.';
comment on column marts.demand_forecast.is_fallback is 'True when the SKU had too little history (NIGHTSHIFT_DEMAND_MIN_HISTORY_DAYS) and got its category profile.';
comment on column marts.demand_forecast.model is 'nightshift-demand/N (the registered model version), baseline (seasonal naive, when the LSTM failed its gate) or category_profile (fallback rows).';
comment on column marts.demand_forecast.as_of is 'The business date the run covers; forecasts start the day after.';
comment on column marts.demand_forecast.run_id is 'The nightly run that built the row (runs).';
comment on column marts.demand_forecast.mlflow_run_id is 'The MLflow child run of the demand branch that night.';
