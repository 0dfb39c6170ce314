"""Prefect tasks: every read and write (DuckDB, files, MLflow). Idempotent per as_of."""
