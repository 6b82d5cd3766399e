"""Experiments: definitions, assignment, and (to come) metrics and analysis."""
