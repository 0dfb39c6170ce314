-- The published recommendations: top-k products per known customer, stamped with lineage.
-- The recommender task registers its picks as indices (`recommendation_picks`) beside the
-- frames that map them to customer ids and SKUs, so the join and the sort of tens of
-- millions of rows run here, within DuckDB's memory limit, not in Python.
create or replace table marts.recommendations as
with final as (
    select
        cast(customers.customer_id as varchar) as customer_id,
        cast(picks.rank as integer) as rank,
        cast(items.sku as varchar) as sku,
        cast(picks.score as double) as score,
        cast(picks.source as varchar) as source,
        cast($model as varchar) as model,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from recommendation_picks as picks
    inner join recommendation_customers as customers on customers.user = picks.user
    inner join recommendation_items as items on items.item = picks.item
)

select * from final
order by customer_id, rank;

comment on table marts.recommendations is 'Top products per customer, and per visitor seen in the last NIGHTSHIFT_RECOMMENDER_VISITOR_DAYS days, as of the run: personalised (mf) for customers with history, popularity in their country (cold_start) for the rest. Never items bought in the exclusion window, never inactive products.';
comment on column marts.recommendations.customer_id is 'The customer the list is for.';
comment on column marts.recommendations.rank is '1 = best.';
comment on column marts.recommendations.sku is 'The recommended product.';
comment on column marts.recommendations.score is 'mf rows: the model score p_u.q_i + b_i (popularity weight when model = baseline); cold_start rows: the SKU''s share of its country''s interaction weight (global share where the country ran out).';
comment on column marts.recommendations.source is 'mf: the customer has interaction history and got the published model''s ranking; cold_start: no history, popularity in their country (or global).';
comment on column marts.recommendations.model is 'The model that filled mf rows: registered MF version (nightshift-recommender/N), or baseline (popularity) when the gate kept it.';
comment on column marts.recommendations.as_of is 'The business date the run covers.';
comment on column marts.recommendations.run_id is 'The nightly run that built the row (runs).';
comment on column marts.recommendations.mlflow_run_id is 'The MLflow child run of the recommender that night.';
