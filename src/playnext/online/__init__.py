"""Online state: what serving reads per request and ingest keeps current (recent plays, precomputed lists)."""
