-- A new warehouse takes the loaded files a manifest beside the raw archive lists (those whose
-- archive file is still there: tasks/ingest.py), with their unparsed records, as if it had
-- loaded them itself: their digests let unchanged landing files be skipped as before.
insert into meta.loaded_files by name
select source_table, source_file, digest, rows_loaded, load_id, loaded_at, archive_file
from manifest_loaded_files;

insert into meta.unparsed_rows by name
select source_table, source_file, source_row, reason, detail, text
from manifest_unparsed_rows
semi join manifest_loaded_files using (source_file);

insert into meta.retired_products by name
select sku, name, category, unit_cost, list_price, retired_by, retired_at
from manifest_retired_products;
