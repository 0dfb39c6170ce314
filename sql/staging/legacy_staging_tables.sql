-- stg_* used to be tables; they are views over staging.judged_* now. Warehouses built
-- before the change still hold the tables, which block `create or replace view`.
select table_name
from duckdb_tables()
where database_name = current_database() and schema_name = 'staging' and table_name like 'stg\_%' escape '\';
