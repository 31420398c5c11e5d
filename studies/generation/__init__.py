"""Response generation: prompts, model backends and the jobs that run them on Celery workers."""
