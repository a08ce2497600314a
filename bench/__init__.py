"""Benchmarks of qbo_pipeline against the embedded sandbox: ``python -m bench [--quick]``."""
