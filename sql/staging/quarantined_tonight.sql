-- Rows quarantined among those loaded by this run (quarantine.rows.run_id is the run that
-- loaded the row's file), per table and reason: the nightly quarantine-share check.
select source_table, reason, count(*) as quarantined
from quarantine.rows
where run_id = $run_id
group by source_table, reason
order by source_table, quarantined desc;
