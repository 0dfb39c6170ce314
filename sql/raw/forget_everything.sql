-- full_refresh: forget every loaded file; the landing folder is loaded again from scratch.
delete from raw.orders;
delete from raw.events;
delete from raw.products;
delete from raw.inventory;
delete from meta.loaded_files;
