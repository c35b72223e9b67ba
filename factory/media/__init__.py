"""Verify, store, thumbnail and annotate produced media files."""
