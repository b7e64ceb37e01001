"""Statistics for health officials: yearly tables, the export, the annual report."""
