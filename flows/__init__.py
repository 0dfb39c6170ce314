"""Prefect flows: wiring of tasks only."""
