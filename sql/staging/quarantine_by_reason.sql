select source_table, reason, count(*) as n
from quarantine.rows
group by source_table, reason
order by source_table, n desc;
