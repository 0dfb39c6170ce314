"""Pure modelling: arrays and frames in, arrays and frames out. No IO, no prefect, no duckdb."""
