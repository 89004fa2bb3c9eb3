"""Facade layer: the decorator engine, the client core, Trace/Span/ToolCall, context,
users, feedback and `capture_event`. Imports only `pipeline`, `vocabulary` and `base`.
"""
