select source_file, digest from meta.loaded_files
where source_table = $source_table and archive_file is null
order by source_file;
