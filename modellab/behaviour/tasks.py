"""Celery tasks: behaviour."""

__all__: list[str] = []
