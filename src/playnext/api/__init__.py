"""Stage ④'s HTTP edge: thin routes over library calls."""
