-- The records of a loaded CSV file that could not be parsed into columns (the frame
-- unparsed_rows_frame, from nightshift.contract.read_csv_tolerantly): kept beside the raw
-- archive so that quarantine.rows can hold them.
insert into meta.unparsed_rows
select $source_table, $source_file, source_row, reason, detail, text
from unparsed_rows_frame
order by source_row;
