"""Harbor notes: a small api and its worker."""
