-- Forget one landing file before (re)loading it: a corrected file replaces its rows.
delete from meta.loaded_files where source_file = $source_file;
delete from meta.unparsed_rows where source_file = $source_file;
