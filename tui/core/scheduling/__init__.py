"""Deciding when and whether jobs run: chains (`after`), priorities and the circuit breaker.

Pure functions over names, conditions and statuses, so the engine stays small and the
rules can be tested without running anything.
"""
