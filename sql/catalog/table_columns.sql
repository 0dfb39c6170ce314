-- A published table's columns in table order, with their descriptions.
select column_name, data_type, coalesce(comment, '') as description
from duckdb_columns()
where schema_name = 'main' and table_name = $name
order by column_index;
