"""Stage ②: feature tables from the lake, each written once as an Ibis expression, run on DuckDB or Spark."""
