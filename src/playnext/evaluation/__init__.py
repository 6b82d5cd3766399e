"""Offline evaluation of recommendations (temporal holdout, full ranking) and, later, experiment analysis."""
