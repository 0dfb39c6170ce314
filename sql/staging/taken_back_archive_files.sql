-- The archive files holding the first copies of the rows take_back_*.sql took out.
select distinct loaded.archive_file
from taken_back_rows as taken
join meta.loaded_files as loaded using (source_file)
order by loaded.archive_file;
