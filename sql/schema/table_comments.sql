-- A table's comment (column_name null) and its columns' comments, as the catalog holds them.
select cast(null as varchar) as column_name, comment
from duckdb_tables()
where database_name = $database and schema_name = $schema and table_name = $name
union all
select column_name, comment
from duckdb_columns()
where database_name = $database and schema_name = $schema and table_name = $name;
