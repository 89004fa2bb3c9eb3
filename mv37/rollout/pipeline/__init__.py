"""Pipeline layer: where spans go once they end.

Provider policy, the span queue and the exporter chain (privacy, accounting, log
quieting, OTLP), the console tree, destination, stats and `check()`. Imports only
`vocabulary` and `base`.
"""
