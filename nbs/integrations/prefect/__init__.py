"""Prefect on a laboratory machine: server, work pool, deployments, worker."""
