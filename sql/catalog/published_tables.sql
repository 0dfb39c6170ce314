-- Every table and view analysts see in marts.duckdb, with its description.
select table_name, 'table' as kind, coalesce(comment, '') as description
from duckdb_tables()
where schema_name = 'main'
union all
select view_name, 'view', coalesce(comment, '')
from duckdb_views()
where schema_name = 'main' and not internal
order by 1;
