"""Stage ①: what can be played, and what it is (genres, duration, release date, language)."""
