select count(*) > 0 from meta.loaded_files where source_table = 'products' and rows_loaded > 0;
