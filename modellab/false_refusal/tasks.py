"""Celery tasks: false_refusal."""

__all__: list[str] = []
