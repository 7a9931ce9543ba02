"""One-command benchmarks: ``make bench`` (``python -m bench [NAME ...]``)."""
