"""Durable agents on DBOS, and chat histories on the same SQL store (``history``)."""

__all__: list[str] = []
