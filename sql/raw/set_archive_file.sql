update meta.loaded_files set archive_file = $archive_file where source_file = $source_file;
