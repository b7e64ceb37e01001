"""Analytical quality control: control rules that decide whether a plate's results may be
used."""
