"""Pipelines: experiment specs, plans (stage DAGs), stage execution and executors."""
