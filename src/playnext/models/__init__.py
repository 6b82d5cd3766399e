"""Stage ③: candidate generators, the ranker, the recommender they make together, and versions of it."""
