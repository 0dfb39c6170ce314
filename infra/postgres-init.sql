-- The MLflow server keeps its runs in its own database beside Prefect's.
create database mlflow;
