"""Approximate nearest-neighbour search over item vectors, with Spotify's voyager (HNSW)."""
