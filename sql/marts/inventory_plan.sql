-- The published inventory plan: one row per product, from the frame the inventory task
-- registers as `inventory_plan_rows`, stamped with lineage.
create or replace table marts.inventory_plan as
with final as (
    select
        cast(sku as varchar) as sku,
        cast(active as boolean) as active,
        cast(demand_class as varchar) as demand_class,
        cast(model as varchar) as model,
        cast(fallback_reason as varchar) as fallback_reason,
        cast(lead_time_days as integer) as lead_time_days,
        cast(lead_time_demand as double) as lead_time_demand,
        cast(safety_stock as double) as safety_stock,
        cast(reorder_point as double) as reorder_point,
        cast(order_up_to as double) as order_up_to,
        cast(on_hand as double) as on_hand,
        cast(on_order as double) as on_order,
        cast(order_qty as bigint) as order_qty,
        cast(days_of_cover as double) as days_of_cover,
        cast(stockout_date as date) as stockout_date,
        cast(service_level_target as double) as service_level_target,
        cast(backtest_cycles as integer) as backtest_cycles,
        cast(backtest_cycles_met as integer) as backtest_cycles_met,
        cast($as_of as date) as as_of,
        cast($run_id as varchar) as run_id,
        cast($mlflow_run_id as varchar) as mlflow_run_id
    from inventory_plan_rows
)

select * from final
order by sku;

comment on table marts.inventory_plan is 'What to order today, per product: lead-time demand, safety stock, reorder point and order quantity from a per-SKU demand model.';
comment on column marts.inventory_plan.demand_class is 'smooth, erratic, intermittent (ADI >= 1.32), constant (incl. no sales) or too_short (under NIGHTSHIFT_INVENTORY_MIN_HISTORY_DAYS of history).';
comment on column marts.inventory_plan.model is 'The demand model: sarima(p,d,q)(P,D,Q,s), croston_tsb, croston_sba or mean.';
comment on column marts.inventory_plan.fallback_reason is 'Why a SARIMA class got the mean model instead (fit failed or did not converge); NULL otherwise.';
comment on column marts.inventory_plan.lead_time_days is 'Supplier lead time (snapshot, else NIGHTSHIFT_DEFAULT_LEAD_TIME_DAYS).';
comment on column marts.inventory_plan.lead_time_demand is 'Forecast units over the lead time.';
comment on column marts.inventory_plan.safety_stock is 'z x sqrt(model variance of demand over lead time + review period + mean daily demand^2 x lead-time variance).';
comment on column marts.inventory_plan.reorder_point is 'lead_time_demand + safety_stock: below it, stock is expected to run out before an order placed today arrives.';
comment on column marts.inventory_plan.order_up_to is 'Forecast units over lead time + review period + safety_stock: the position an order restores.';
comment on column marts.inventory_plan.order_qty is 'Units to order today: order_up_to - (on_hand + on_order) rounded up to whole units when the position is below order_up_to, else 0; always 0 for an inactive product.';
comment on column marts.inventory_plan.active is 'The product is on sale (the catalogue''s active flag; derived catalogues: sold at a price within NIGHTSHIFT_ACTIVE_WINDOW_DAYS). An inactive, discontinued product keeps its plan as a record but is never reordered.';
comment on column marts.inventory_plan.days_of_cover is 'on_hand / mean forecast daily demand; NULL when no demand is forecast.';
comment on column marts.inventory_plan.stockout_date is 'The day cumulative median demand exceeds on_hand (within 120 days), NULL if later.';
comment on column marts.inventory_plan.service_level_target is 'Target probability of no stock-out per replenishment cycle.';
comment on column marts.inventory_plan.backtest_cycles is 'Weekly review cycles replayed over the backtest weeks.';
comment on column marts.inventory_plan.backtest_cycles_met is 'Replayed cycles whose demand stayed within the order-up-to level.';
comment on column marts.inventory_plan.as_of is 'The business date the run covers.';
comment on column marts.inventory_plan.run_id is 'The nightly run that built the row (runs).';
comment on column marts.inventory_plan.mlflow_run_id is 'The MLflow child run of the inventory branch that night.';
comment on column marts.inventory_plan.sku is 'The product (stock code).';
comment on column marts.inventory_plan.on_hand is 'Units in stock at as_of (latest inventory snapshot, or the documented default when none landed).';
comment on column marts.inventory_plan.on_order is 'Units ordered and not yet received at as_of.';
