"""Vocabulary layer: attribute builders and mirrors, payloads, events, GenAI messages, ids.

Built on the generated `mv37.rollout.semconv` constants; imports only `base` below it.
"""
