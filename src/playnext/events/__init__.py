"""Stage ①: listening events in, durably."""
