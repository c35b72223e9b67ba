"""HTTP endpoints outside the admin: the webhooks providers call."""
