"""Dataset sources, one file per source; discovered by :mod:`bench.data` (``_*.py`` are shared helpers)."""
