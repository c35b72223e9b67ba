"""Production: from placed items to stored products."""
