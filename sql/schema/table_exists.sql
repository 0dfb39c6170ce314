select count(*) > 0 as table_exists
from information_schema.tables
where table_schema = $schema and table_name = $name;
