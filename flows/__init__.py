"""Prefect flows: thin wrappers of the pipeline's plain functions."""
