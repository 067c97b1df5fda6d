"""Recording work as runs: ``@lineage.step`` (memoized calls), ``store.run()`` (experiment
tracking), ``lineage run`` (any command), the one recording path they share, ``explain``,
the environment and code descriptions, and evaluations.

May import :mod:`lineage.store` and everything below it.
"""
