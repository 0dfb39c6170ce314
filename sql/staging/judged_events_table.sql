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
comment on column staging.judged_events.load_id is 'The run that loaded the file holding this row''s first copy.';
comment on column staging.judged_events.source_file is 'Landing file of this row''s first copy, relative to the landing folder.';
comment on column staging.judged_events.source_row is '1-based data row of the first copy in that file (the header is not counted).';
comment on column staging.judged_events.copies is 'How many exact copies of this raw row arrived, across all files: the first is judged, the other copies - 1 are counted as duplicates.';
comment on column staging.judged_events.row_status is 'staged (the row is in the stg_ view) or quarantined (it is in quarantine.rows).';
comment on column staging.judged_events.reason is 'The rule a quarantined row broke (the codes of quarantine.rows.reason); null when staged.';
comment on column staging.judged_events.detail is 'What was wrong, in words, naming the column and value; null when staged.';
comment on column staging.judged_events.record is 'The raw row as JSON, for a quarantined row; null when staged.';
comment on column staging.judged_events.user_id is 'The raw user_id, trimmed and typed as the contract says; null when empty or unparseable (see stg_events for its meaning).';
comment on column staging.judged_events.session_id is 'The raw session_id, trimmed and typed as the contract says; null when empty or unparseable (see stg_events for its meaning).';
comment on column staging.judged_events.sku is 'The raw sku, trimmed and typed as the contract says; null when empty or unparseable (see stg_events for its meaning).';
comment on column staging.judged_events.event_type is 'The raw event_type, trimmed and lower-cased (a row with any other value than the four types is quarantined).';
comment on column staging.judged_events.ts is 'The raw ts, trimmed and typed as the contract says; null when empty or unparseable (see stg_events for its meaning).';
comment on column staging.judged_events.event_date is 'Business date of ts in the shop timezone; null when ts did not parse.';
comment on column staging.stg_events.session_id is 'Browsing session id (sessions, bounces and conversion are counted by it).';
comment on column staging.stg_events.sku is 'Product the event concerns; null for an event not about one product.';
