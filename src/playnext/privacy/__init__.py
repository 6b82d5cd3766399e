"""Deleting a listener's data on request, and keeping it deleted."""
