"""Validation: every row of a file parsed and checked (pandera); failures held."""
