select source_file, digest, archive_file, source_table from meta.loaded_files;
