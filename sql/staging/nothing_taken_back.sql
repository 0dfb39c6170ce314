-- A full build judges every archive file, so no judged row is taken back (take_back_*.sql).
create or replace temp table taken_back_rows (source_file varchar, source_row bigint, copies bigint);
