-- The raw archive: each loaded file's Parquet copy, per contract table, in file order.
select source_table, source_file, archive_file
from meta.loaded_files
order by source_table, source_file;
