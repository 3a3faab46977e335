"""The benchmarks are scripts run by hand (``python tests/benchmarks/streams.py``), not tests."""

collect_ignore_glob = ["*.py"]
