"""Evaluation: cards and results against the cutoff sets, one vectorised evaluator."""
