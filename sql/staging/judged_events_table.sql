-- The events' verdicts, emptied for a full build; stg_events.sql fills it in batches.
create or replace table staging.judged_events (
    load_id varchar,
    source_file varchar,
    source_row bigint,
    row_hash ubigint,
    copies bigint,
    row_status varchar,
    reason varchar,
    detail varchar,
    record json,
    user_id varchar,
    session_id varchar,
    sku varchar,
    event_type varchar,
    ts timestamptz,
    event_date date
);

create or replace view staging.stg_events as
select user_id, session_id, sku, event_type, ts, event_date
from staging.judged_events
where row_status = 'staged';

comment on view staging.stg_events is 'Clean click-stream events.';
comment on column staging.stg_events.user_id is 'Visitor id; equals customer_id for signed-in customers.';
comment on column staging.stg_events.event_type is 'impression, view, add_to_cart or purchase.';
comment on column staging.stg_events.ts is 'When the event happened (stored as UTC).';
comment on column staging.stg_events.event_date is 'Business date of the event in the shop timezone.';
comment on table staging.judged_events is 'Every distinct raw events row with its verdict (row_status staged or quarantined, reason, detail) and how many exact copies arrived; stg_events is its staged rows.';
comment on column staging.judged_events.row_hash is 'hash() of the raw text: an increment takes out and judges again the verdicts of the hashes a changed file holds.';
