"""Newborn screening laboratory pipeline (synthetic data only)."""

__version__ = "0.1.0"
