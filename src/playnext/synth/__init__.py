"""A listening simulator with known ground-truth tastes, for demos, tests and benchmarks at any scale."""
