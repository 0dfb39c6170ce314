-- Rows quarantined, by table and reason (the warehouse's quarantine holds every night's).
select source_table, reason, count(*) as rows
from quarantine.rows
group by all
order by source_table, rows desc;
