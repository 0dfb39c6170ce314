-- How many runs the warehouse records.
select count(*) from meta.runs;
