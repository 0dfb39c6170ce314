-- The published price recommendations: one row per active product, from the frame the
-- pricing task registers as `price_recommendations_rows`, stamped with lineage.
create or replace table marts.price_recommendations as
with final as (
    select
        cast(sku as varchar) as sku,
        cast(current_price as double) as current_price,
        cast(recommended_price as double) as recommended_price,
        cast(unit_cost as double) as unit_cost,
        cast(elasticity as double) as elasticity,
        cast(elasticity_se as double) as elasticity_se,
        cast(elasticity_source as varchar) as elasticity_source,
        cast(demand_source as varchar) as demand_source,
        cast(expected_units as double) as expected_units,
        cast(expected_revenue as double) as expected_revenue,
        cast(expected_profit as double) as expected_profit,
        cast(current_expected_profit as double) as current_expected_profit,
        cast(profit_uplift as double) as profit_uplift,
        cast(binding_constraint as varchar) as binding_constraint,
        cast($model as varchar) as model,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from price_recommendations_rows
)

select * from final
order by sku;

comment on table marts.price_recommendations is 'A price per active product for the pricing horizon (28 days by default) that maximises expected profit within the business rules.';
comment on column marts.price_recommendations.current_price is 'Last observed selling price up to as_of (list price if never sold).';
comment on column marts.price_recommendations.recommended_price is 'The price to set: the current price where the SKU was infeasible or the optimiser fell back.';
comment on column marts.price_recommendations.unit_cost is 'Cost per unit (catalogue cost, or the configured share of list price).';
comment on column marts.price_recommendations.elasticity is '% change in units per 1% change in price: the SKU''s Poisson log-log estimate shrunk towards its category''s, clipped.';
comment on column marts.price_recommendations.elasticity_se is 'Standard error of the elasticity.';
comment on column marts.price_recommendations.elasticity_source is 'sku (its own sales carry the estimate), category (leans on the category''s pooled estimate) or default (NIGHTSHIFT_PRICING_DEFAULT_ELASTICITY).';
comment on column marts.price_recommendations.demand_source is 'forecast (tonight''s demand_forecast p50 at the current price) or trailing_mean (28-day mean, when no forecast exists for the night).';
comment on column marts.price_recommendations.expected_units is 'Units expected over the horizon at the recommended price: current-price units x (p / p0) ^ elasticity.';
comment on column marts.price_recommendations.expected_revenue is 'recommended_price x expected_units.';
comment on column marts.price_recommendations.expected_profit is '(recommended_price - unit_cost) x expected_units.';
comment on column marts.price_recommendations.current_expected_profit is '(current_price - unit_cost) x the units expected at the current price (capped at available stock).';
comment on column marts.price_recommendations.profit_uplift is 'expected_profit - current_expected_profit.';
comment on column marts.price_recommendations.binding_constraint is 'Why the most profitable ladder price was not chosen: none, min_margin, max_change, stock, category_band; infeasible: <rule> when no price met the rules (current price kept); solver fallback.';
comment on column marts.price_recommendations.model is 'milp/<solver> when the optimiser''s prices passed the gate, current_price otherwise (with the reason).';
comment on column marts.price_recommendations.sku is 'The product (stock code).';
comment on column marts.price_recommendations.as_of is 'The business date (shop timezone) of the night that produced the row; the run saw only data on or before it.';
comment on column marts.price_recommendations.run_id is 'The nightly run that produced the row (runs.run_id).';
comment on column marts.price_recommendations.mlflow_run_id is 'The MLflow run that logged the model behind the row (the branch''s child run).';
