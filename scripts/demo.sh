#!/usr/bin/env bash
# Start RefusalLab locally with the demo studies. Uses PostgreSQL and Redis when they answer on
# 127.0.0.1, otherwise SQLite and in-process tasks; says which. Ctrl-C stops everything.
# Environment: DATABASE_URL, CELERY_BROKER_URL/REDIS_URL, HOST (127.0.0.1), PORT (8000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY=$VENV/bin/python

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- Python environment -------------------------------------------------------------------
if [[ ! -x $PY ]]; then
  command -v "$PYTHON" >/dev/null || { echo "ERROR: $PYTHON not found (Debian: apt-get install python3.11-venv)" >&2; exit 1; }
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.installed-runtime
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing the project into $VENV"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -e .
  echo "$want" >"$stamp"
fi
mkdir -p var

# --- Database: $DATABASE_URL, else local PostgreSQL, else SQLite --------------------------
if [[ -n ${DATABASE_URL:-} ]]; then
  db_mode="DATABASE_URL from the environment"
elif "$PY" - 2>/dev/null <<'PY'
import psycopg
with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2,
                     autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'refusallab'").fetchone():
        conn.execute("CREATE DATABASE refusallab")
PY
then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/refusallab
  db_mode="PostgreSQL at 127.0.0.1:5432 (database refusallab)"
else
  export DATABASE_URL="sqlite:///$PWD/var/demo.sqlite3"
  db_mode="SQLite at var/demo.sqlite3 (no PostgreSQL answered at 127.0.0.1:5432)"
fi

# --- Tasks: a Celery worker when Redis answers, else run them in-process ------------------
broker=${CELERY_BROKER_URL:-${REDIS_URL:-redis://127.0.0.1:6379/0}}
if BROKER="$broker" "$PY" - 2>/dev/null <<'PY'
import os
import redis
redis.Redis.from_url(os.environ["BROKER"], socket_connect_timeout=1, socket_timeout=1).ping()
PY
then
  export CELERY_BROKER_URL=$broker
  task_mode="Celery worker on queue 'default' via $broker (log: var/worker.log)"
  unset CELERY_TASK_ALWAYS_EAGER
  use_worker=1
else
  export CELERY_TASK_ALWAYS_EAGER=1
  task_mode="in-process (CELERY_TASK_ALWAYS_EAGER=1; no Redis answered at $broker)"
  use_worker=0
fi

export DEBUG=1 ALLOWED_HOSTS='*' HOST PORT
say "database: $db_mode"
say "tasks:    $task_mode"

"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v0

worker_pid=
stop_worker() {
  if [[ -n $worker_pid ]] && kill -0 "$worker_pid" 2>/dev/null; then
    say "stopping the Celery worker (pid $worker_pid)"
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
}
trap stop_worker EXIT
trap 'exit 130' INT TERM

if [[ $use_worker == 1 ]]; then
  # -B: the worker also runs beat's schedule (e.g. giving back timed-out participant slots).
  "$VENV/bin/celery" -A config worker -Q default -l info --concurrency 1 \
    -B -s var/celerybeat-schedule >var/worker.log 2>&1 &
  worker_pid=$!
fi

"$PY" manage.py setup_demo --base-url "http://$HOST:$PORT"

if [[ -n $worker_pid ]] && ! kill -0 "$worker_pid" 2>/dev/null; then
  echo "WARNING: the Celery worker exited; last lines of var/worker.log:" >&2
  tail -n 20 var/worker.log >&2 || true
fi

say "database: $db_mode"
say "tasks:    $task_mode"
say "serving on http://$HOST:$PORT/  (Ctrl-C to stop)"
"$PY" manage.py runserver "$HOST:$PORT" --noreload
