insert into meta.loaded_files (
    source_table, source_file, digest, rows_loaded, load_id, loaded_at, archive_file
)
values ($source_table, $source_file, $digest, $rows_loaded, $load_id, $loaded_at, $archive_file);
