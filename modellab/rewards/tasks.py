"""Celery tasks: rewards."""

__all__: list[str] = []
