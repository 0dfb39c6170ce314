-- The order lines' verdicts, emptied for a full build; stg_orders.sql fills it in batches.
create or replace table staging.judged_orders (
    load_id varchar,
    source_file varchar,
    source_row bigint,
    row_hash ubigint,
    copies bigint,
    row_status varchar,
    reason varchar,
    detail varchar,
    record json,
    order_id varchar,
    line_no bigint,
    customer_id varchar,
    sku varchar,
    quantity bigint,
    unit_price decimal(18, 4),
    ordered_at timestamptz,
    order_date date,
    country varchar,
    channel varchar
);

create or replace view staging.stg_orders as
select
    order_id, line_no, customer_id, sku, quantity, unit_price, ordered_at, order_date,
    country, channel, quantity < 0 as is_return, source_file, source_row, load_id
from staging.judged_orders
where row_status = 'staged';

comment on view staging.stg_orders is 'Clean, typed order lines. One row per (order_id, line_no); returns have quantity < 0.';
comment on column staging.stg_orders.customer_id is 'Customer id; null for a guest checkout.';
comment on column staging.stg_orders.quantity is 'Units; negative for a return, which reduces net demand.';
comment on column staging.stg_orders.unit_price is 'Price per unit in the shop currency.';
comment on column staging.stg_orders.ordered_at is 'When the line was ordered (stored as UTC).';
comment on column staging.stg_orders.order_date is 'Business date of the order in the shop timezone.';
comment on column staging.stg_orders.is_return is 'True for a return (negative quantity).';
comment on column staging.stg_orders.source_file is 'Landing file of the line''s first copy.';
comment on column staging.stg_orders.source_row is '1-based data row of the first copy in that file.';
comment on table staging.judged_orders is 'Every distinct raw orders row with its verdict (row_status staged or quarantined, reason, detail) and how many exact copies arrived; stg_orders is its staged rows.';
comment on column staging.judged_orders.row_hash is 'hash() of the raw text: an increment takes out and judges again the verdicts of the hashes a changed file holds.';
