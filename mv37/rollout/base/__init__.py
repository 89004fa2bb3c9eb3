"""Base layer: configuration, diagnostics and shared types. Imports nothing of ours."""
