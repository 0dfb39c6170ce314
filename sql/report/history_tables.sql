select view_name from duckdb_views() where schema_name = 'main' and not internal;
