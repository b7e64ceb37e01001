"""Integrations with other systems (Prefect on a laboratory machine)."""
