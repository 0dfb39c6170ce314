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
comment on column staging.judged_orders.load_id is 'The run that loaded the file holding this row''s first copy.';
comment on column staging.judged_orders.source_file is 'Landing file of this row''s first copy, relative to the landing folder.';
comment on column staging.judged_orders.source_row is '1-based data row of the first copy in that file (the header is not counted).';
comment on column staging.judged_orders.copies is 'How many exact copies of this raw row arrived, across all files: the first is judged, the other copies - 1 are counted as duplicates.';
comment on column staging.judged_orders.row_status is 'staged (the row is in the stg_ view) or quarantined (it is in quarantine.rows).';
comment on column staging.judged_orders.reason is 'The rule a quarantined row broke (the codes of quarantine.rows.reason); null when staged.';
comment on column staging.judged_orders.detail is 'What was wrong, in words, naming the column and value; null when staged.';
comment on column staging.judged_orders.record is 'The raw row as JSON, for a quarantined row; null when staged.';
comment on column staging.judged_orders.order_id is 'The raw order_id, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.line_no is 'The raw line_no, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.customer_id is 'The raw customer_id, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.sku is 'The raw sku, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.quantity is 'The raw quantity, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.unit_price is 'The raw unit_price, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.ordered_at is 'The raw ordered_at, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.order_date is 'Business date of ordered_at in the shop timezone; null when ordered_at did not parse.';
comment on column staging.judged_orders.country is 'The raw country, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.judged_orders.channel is 'The raw channel, trimmed and typed as the contract says; null when empty or unparseable (see stg_orders for its meaning).';
comment on column staging.stg_orders.order_id is 'Order id; with line_no, the key.';
comment on column staging.stg_orders.line_no is 'Line number within the order.';
comment on column staging.stg_orders.sku is 'Product sold (or returned).';
comment on column staging.stg_orders.country is 'Customer country; null when not given.';
comment on column staging.stg_orders.channel is 'Sales channel as given; null when not given.';
comment on column staging.stg_orders.load_id is 'The run that loaded the file holding the line''s first copy.';
