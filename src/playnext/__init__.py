"""playnext: events in, personalized audio out."""

__version__ = "0.1.0"
