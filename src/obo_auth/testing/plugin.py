"""obo_auth's pytest plugin (placeholder while it is written)."""
