-- raw.* used to be DuckDB tables of text; the raw archive is Parquet files now. Warehouses
-- built before that still have the tables: their rows move into the archive on the next ingest.
select table_name from duckdb_tables() where schema_name = 'raw' and database_name = current_database()
order by table_name;
