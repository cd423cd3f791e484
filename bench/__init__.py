"""credit-seq-bench: a benchmark suite for credit-default models on irregular firm panels."""

__version__ = "0.1.0"
