"""Follow-up: the recall list's life, from a request to its outcome."""
