"""Benchmarks run by hand (see README.md); a package so that mypy tells its conftest apart."""
