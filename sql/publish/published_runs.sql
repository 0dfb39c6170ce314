-- Which of these runs the published marts (attached as `previous`) hold, i.e. whose publish committed.
select run_id from previous.main.runs where list_contains($run_ids, run_id);
