-- The loaded files' unparsed CSV records, written beside the raw archive
-- (raw/unparsed_rows.parquet): the archive holds columns, so these live only here and in meta.
select source_table, source_file, source_row, reason, detail, text
from meta.unparsed_rows
order by source_table, source_file, source_row;
