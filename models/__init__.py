"""Model adapters, one file per family; discovered by :mod:`bench.registry` (``_*.py`` are shared helpers)."""
