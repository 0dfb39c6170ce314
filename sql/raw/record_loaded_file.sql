insert into meta.loaded_files
values ($source_table, $source_file, $digest, $rows_loaded, $load_id, $loaded_at);
