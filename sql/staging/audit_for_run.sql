select table_name, rows_in, rows_staged, rows_quarantined, rows_duplicate, rows_new
from meta.row_audit
where run_id = $run_id
order by table_name;
