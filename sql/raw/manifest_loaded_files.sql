-- The loaded files as written beside the raw archive (raw/loaded_files.parquet): a new
-- warehouse takes them back from there (raw/adopt_manifest.sql).
select source_table, source_file, digest, rows_loaded, load_id, loaded_at, archive_file
from meta.loaded_files
order by source_table, source_file;
