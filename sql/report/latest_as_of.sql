-- The newest night published.
select max(as_of) from kpi_daily;
