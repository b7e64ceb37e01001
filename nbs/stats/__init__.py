"""Statistics for health officials: the registry of what is published (``registry``),
the yearly tables and the officials' file (``statistics``), the annual report (``report``)."""
