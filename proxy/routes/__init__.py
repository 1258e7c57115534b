"""HTTP endpoints, one module per concern."""
