-- The warehouse's schemas and the tables every layer appends to. Idempotent.
create schema if not exists staging;
create schema if not exists quarantine;
create schema if not exists features;
create schema if not exists marts;
create schema if not exists meta;

create table if not exists quarantine.rows (
    run_id varchar,
    source_table varchar,
    source_file varchar,
    source_row bigint,
    reason varchar,
    detail varchar,
    record json
);
comment on table quarantine.rows is 'Input rows that were not staged, one per row, with the rule they broke.';
comment on column quarantine.rows.run_id is 'The run that loaded the row.';
comment on column quarantine.rows.source_table is 'Contract table: orders, events, products or inventory.';
comment on column quarantine.rows.source_file is 'Landing file, relative to the landing folder.';
comment on column quarantine.rows.source_row is '1-based data row in that file (the header is not counted).';
comment on column quarantine.rows.reason is 'Rule code: malformed_row, bad_encoding, null_key, bad_value, bad_timestamp, future_timestamp, negative_price, non_product_sku, stock_adjustment, unknown_sku, bad_event_type, duplicate_key_conflict.';
comment on column quarantine.rows.detail is 'What was wrong, in words, naming the column and value.';
comment on column quarantine.rows.record is 'The raw row as JSON.';

create table if not exists meta.loaded_files (
    source_table varchar,
    source_file varchar,
    digest varchar,
    rows_loaded bigint,
    load_id varchar,
    loaded_at timestamptz,
    archive_file varchar
);
-- warehouses from before the Parquet raw archive (their raw.* tables are moved into it by
-- tasks/ingest.py on the next ingest)
alter table meta.loaded_files add column if not exists archive_file varchar;
comment on table meta.loaded_files is 'The landing files held in the raw archive, with the SHA-256 they had when loaded.';
comment on column meta.loaded_files.archive_file is 'The file''s rows exactly as they arrived (text, with source_file and source_row), as Parquet; relative to NIGHTSHIFT_HOME.';
comment on column meta.loaded_files.source_table is 'Contract table: orders, events, products or inventory.';
comment on column meta.loaded_files.source_file is 'Landing file, relative to the landing folder; one row per file (a corrected file replaces its row).';
comment on column meta.loaded_files.digest is 'SHA-256 of the file''s bytes when it was loaded: a file whose digest changed is loaded again as a correction.';
comment on column meta.loaded_files.rows_loaded is 'Data rows the file held (unparsed records included).';
comment on column meta.loaded_files.load_id is 'The run that loaded this version of the file.';
comment on column meta.loaded_files.loaded_at is 'When it was loaded; timestamps later than this plus NIGHTSHIFT_FUTURE_TOLERANCE_HOURS are quarantined as future_timestamp.';

create table if not exists meta.unparsed_rows (
    source_table varchar,
    source_file varchar,
    source_row bigint,
    reason varchar,
    detail varchar,
    text varchar
);
comment on table meta.unparsed_rows is 'CSV records of the loaded files that could not be parsed into the contract''s columns, kept here because the raw archive holds columns: they are quarantined as malformed_row or bad_encoding.';
comment on column meta.unparsed_rows.source_table is 'Contract table: orders, events, products or inventory.';
comment on column meta.unparsed_rows.source_file is 'Landing file, relative to the landing folder.';
comment on column meta.unparsed_rows.reason is 'malformed_row (more fields than the header, or broken quoting) or bad_encoding (not UTF-8).';
comment on column meta.unparsed_rows.detail is 'What was wrong, in words, naming the line of the file.';
comment on column meta.unparsed_rows.source_row is '1-based record in the file, numbered as the rows beside it in the raw archive.';
comment on column meta.unparsed_rows.text is 'The record''s lines as they arrived; bytes that are not UTF-8 are shown as \xNN.';

create table if not exists meta.retired_products (
    sku varchar,
    name varchar,
    category varchar,
    unit_cost decimal(18, 4),
    list_price decimal(18, 4),
    retired_by varchar,
    retired_at timestamptz
);
comment on table meta.retired_products is 'Products a loaded catalogue listed and none lists now (a shop''s export of its active products drops the discontinued ones): kept with their last attributes, so that their order lines stay known instead of turning unknown_sku, and shown in stg_products as inactive.';
comment on column meta.retired_products.sku is 'Product id, as the catalogue that last listed it had it.';
comment on column meta.retired_products.name is 'Product name from the last catalogue that listed it.';
comment on column meta.retired_products.category is 'Product category from the last catalogue that listed it.';
comment on column meta.retired_products.unit_cost is 'Cost per unit from the last catalogue that listed it.';
comment on column meta.retired_products.list_price is 'Catalogue price per unit from the last catalogue that listed it.';
comment on column meta.retired_products.retired_by is 'The run whose ingest no longer found the product in any catalogue.';
comment on column meta.retired_products.retired_at is 'When that ingest ran.';

create table if not exists meta.row_audit (
    run_id varchar,
    table_name varchar,
    rows_in bigint,
    rows_staged bigint,
    rows_quarantined bigint,
    rows_duplicate bigint,
    rows_new bigint,
    files_loaded bigint,
    audited_at timestamptz
);
comment on table meta.row_audit is 'Row accounting per run and table: rows_in = rows_staged + rows_quarantined + rows_duplicate.';
comment on column meta.row_audit.rows_in is 'Raw rows held for the table after the run''s ingest.';
comment on column meta.row_audit.rows_new is 'Rows read from files this run loaded.';
comment on column meta.row_audit.run_id is 'The run (a night or a CLI ingest) the accounting was taken by.';
comment on column meta.row_audit.table_name is 'Contract table: orders, events, products or inventory.';
comment on column meta.row_audit.rows_staged is 'Distinct rows staged (in the stg_ view).';
comment on column meta.row_audit.rows_quarantined is 'Rows quarantined, one per distinct row (in quarantine.rows).';
comment on column meta.row_audit.rows_duplicate is 'Exact copies of a row already counted, in any file.';
comment on column meta.row_audit.files_loaded is 'Landing files this run loaded (new or corrected).';
comment on column meta.row_audit.audited_at is 'When the accounting was taken.';

create table if not exists meta.runs (
    run_id varchar primary key,
    flow_run_id varchar,
    as_of date,
    source varchar,
    models varchar[],
    full_refresh boolean,
    started_at timestamptz,
    finished_at timestamptz,
    status varchar,
    input_digests json,
    row_counts json,
    defaults_used varchar[],
    mlflow_run_id varchar,
    code_version varchar,
    error varchar
);
comment on table meta.runs is 'One row per run: what ran (models, code_version), on what data (input_digests, row_counts), with what result (status, error) and which defaults were used.';
comment on column meta.runs.run_id is 'Sortable unique id: business date, UTC start time, random suffix.';
comment on column meta.runs.flow_run_id is 'The Prefect flow run (open it in the Prefect UI); NULL for CLI ingests.';
comment on column meta.runs.as_of is 'The business date the run covered; NULL for a plain ingest.';
comment on column meta.runs.source is 'What was loaded: landing, or online-retail:<file>.';
comment on column meta.runs.models is 'The model branches the run was asked to run.';
comment on column meta.runs.full_refresh is 'Whether every landing file was reloaded from scratch.';
comment on column meta.runs.started_at is 'When the run started (UTC).';
comment on column meta.runs.finished_at is 'When the run ended (UTC); NULL while running.';
comment on column meta.runs.status is 'running, succeeded, degraded (a model branch failed and its tables kept the previous rows), failed, or abandoned (the process was killed before it finished).';
comment on column meta.runs.input_digests is 'Per input table, a SHA-256 over the (file, digest) pairs loaded: same digest, same input.';
comment on column meta.runs.row_counts is 'Per input table: rows_in, rows_staged, rows_quarantined, rows_duplicate, rows_new.';
comment on column meta.runs.defaults_used is 'Defaults the run had to apply because data was missing (derived catalogue, default cost, default inventory, no events).';
comment on column meta.runs.mlflow_run_id is 'The night''s MLflow parent run.';
comment on column meta.runs.code_version is 'nightshift version and git commit that ran.';
comment on column meta.runs.error is 'Why the run failed, or which branches failed when degraded.';

create table if not exists meta.staging_build (
    build_key varchar,
    built_at timestamptz,
    settings_key varchar,
    files json
);
-- warehouses from before incremental judging (their next ingest judges everything)
alter table meta.staging_build add column if not exists settings_key varchar;
alter table meta.staging_build add column if not exists files json;
comment on table meta.staging_build is 'What the staging.* tables and quarantine.rows were last judged from (one row): an ingest that loads no file and finds the same key judges nothing again.';
comment on column meta.staging_build.build_key is 'SHA-256 of the loaded files and their digests, the settings the staging SQL binds, the shop timezone and the SQL text itself.';
comment on column meta.staging_build.settings_key is 'SHA-256 of the settings the staging SQL binds, the shop timezone and the SQL text: an increment needs it unchanged.';
comment on column meta.staging_build.files is 'The loaded files staging was judged from, as {source_file: SHA-256}: an increment judges only the rows of the files added or corrected since.';
comment on column meta.staging_build.built_at is 'When staging was last judged.';

create table if not exists meta.feature_build (
    build_key varchar,
    as_of date,
    built_at timestamptz,
    defaults_used varchar[]
);
comment on table meta.feature_build is 'What the features.* tables were last built from (one row): a rebuild with the same key is skipped.';
comment on column meta.feature_build.build_key is 'SHA-256 of as_of, the input digests, the settings the SQL binds and the SQL text itself.';
comment on column meta.feature_build.as_of is 'The business date the features were built for.';
comment on column meta.feature_build.built_at is 'When they were built.';
comment on column meta.feature_build.defaults_used is 'Defaults the build applied because data was missing (as in meta.runs).';
