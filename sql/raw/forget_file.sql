-- Remove one landing file's rows from raw before (re)loading it: a corrected file replaces them.
delete from raw.orders where source_file = $source_file;
delete from raw.events where source_file = $source_file;
delete from raw.products where source_file = $source_file;
delete from raw.inventory where source_file = $source_file;
delete from meta.loaded_files where source_file = $source_file;
