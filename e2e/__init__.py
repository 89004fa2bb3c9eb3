"""End-to-end checks against real receivers (Arize Phoenix, the rotel collector)."""
