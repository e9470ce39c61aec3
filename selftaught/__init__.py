"""selftaught: a language model teaches itself to reason (STaR, B-STaR and their family)."""

__version__ = "0.1.0"
