"""Public interaction datasets turned into playnext events and catalog, read from what installed packages ship."""
