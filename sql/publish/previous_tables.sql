select table_name from duckdb_tables() where database_name = 'previous' and schema_name = 'main';
