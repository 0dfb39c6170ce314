-- The MLflow parent run of a run that could not record it itself (its process died).
update meta.runs set mlflow_run_id = $mlflow_run_id where run_id = $run_id and mlflow_run_id is null;
