# RefusalLab: one image for web (gunicorn), Celery workers and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings

RUN groupadd --system --gid 1000 app \
 && useradd --system --uid 1000 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

# Optional extras of pyproject.toml, comma-separated: `--build-arg EXTRAS=gpu` adds torch and
# transformers (CUDA wheels from PyPI) for the GPU workers; empty (the default) installs the base.
ARG EXTRAS=""

# Dependencies first, so that code changes do not reinstall them.
COPY pyproject.toml ./
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" && rm -rf build *.egg-info

COPY . .
# Static files are collected into the image and served by whitenoise; the key is a build-time dummy.
RUN SECRET_KEY=collectstatic-build-only DEBUG=0 python manage.py collectstatic --noinput -v0

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
