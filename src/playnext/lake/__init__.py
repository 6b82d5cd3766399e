"""The lake: immutable Parquet files that every later stage reads, committed through a manifest."""
