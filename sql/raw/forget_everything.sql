-- full_refresh: forget every loaded file; the landing folder is loaded again from scratch.
delete from meta.loaded_files;
delete from meta.unparsed_rows;
