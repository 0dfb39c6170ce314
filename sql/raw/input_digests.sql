-- One digest per contract table over the (file, digest) pairs it holds: the input identity.
select source_table, sha256(string_agg(source_file || ':' || digest, '|' order by source_file))
from meta.loaded_files
group by source_table
order by source_table;
