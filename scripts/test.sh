#!/usr/bin/env bash
# The whole test suite: lint, unit, integration (real PostgreSQL/Redis/Celery), browser (Chromium).
# Usage: scripts/test.sh [pytest args...]     (make test runs this; extra args go to pytest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Python environment -------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  if ! command -v "$PYTHON" >/dev/null; then
    say "installing $PYTHON (Debian)"
    apt_install python3.11 python3.11-venv
  fi
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV" || die "could not create $VENV (on Debian: apt-get install python3.11-venv)"
fi
# Reinstall only when pyproject.toml changed since the last successful install.
stamp=$VENV/.installed-test
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing the project and its test dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  echo "$want" >"$stamp"
fi

# --- Chromium for the browser tests (Debian's; Playwright's own download is not used) ----
if [[ ! -x /usr/bin/chromium ]]; then
  say "installing Debian's chromium for the browser tests"
  apt_install chromium
fi

# --- Test environment ---------------------------------------------------------------------
unset DEBUG  # the tests set what they need
export SECRET_KEY=test-only-secret
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/refusallab}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
export ALLOWED_HOSTS=localhost,127.0.0.1,testserver
# A fixed recruitment-id key for the tests (tests/conftest.py sets the same when unset):
# base64url(sha256(b"refusallab test recruitment-id key")), never a production key.
export RECRUITMENT_ID_KEYS=${RECRUITMENT_ID_KEYS:-M2QWa0L0uLiQIsYmFeWCNMfTkQAA4sAhr74Mdtyguds=}
export SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0
# Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls.
export DJANGO_ALLOW_ASYNC_UNSAFE=true

# --- PostgreSQL and Redis must answer (integration tests run against the real ones) -------
pg_ok() {
  "$VENV/bin/python" - <<'PY'
import os, sys
import dj_database_url, psycopg
cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
if "postgresql" not in cfg["ENGINE"]:
    sys.exit("DATABASE_URL must point at PostgreSQL: the integration tests need it")
try:
    psycopg.connect(dbname="postgres", user=cfg["USER"] or None, password=cfg["PASSWORD"] or None,
                    host=cfg["HOST"] or None, port=cfg["PORT"] or None, connect_timeout=3).close()
except psycopg.Error as exc:
    sys.exit(f"PostgreSQL at {cfg['HOST']}:{cfg['PORT']} does not answer: {str(exc).strip()}")
PY
}
redis_ok() {
  "$VENV/bin/python" - <<'PY'
import os, sys
import redis
url = os.environ["CELERY_BROKER_URL"]
try:
    redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
except redis.RedisError as exc:
    sys.exit(f"Redis at {url} does not answer: {exc}")
PY
}
pg_start="pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
redis_start='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
# In CI (a fresh machine) start the local servers ourselves when they are installed but down.
if ! pg_ok 2>/dev/null; then
  if [[ ${CI:-} == true ]] && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    say "starting PostgreSQL: $pg_start"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_ok 2>/dev/null && break; sleep 1; done
  fi
  pg_ok || die "PostgreSQL is not reachable at \$DATABASE_URL ($DATABASE_URL).
Start it with:  $pg_start
or point DATABASE_URL at a PostgreSQL server whose user may create databases."
fi
if ! redis_ok 2>/dev/null; then
  if [[ ${CI:-} == true ]] && command -v redis-server >/dev/null; then
    say "starting Redis: $redis_start"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no || true
    for _ in 1 2 3 4 5; do redis_ok 2>/dev/null && break; sleep 1; done
  fi
  redis_ok || die "Redis is not reachable at \$CELERY_BROKER_URL ($CELERY_BROKER_URL).
Start it with:  $redis_start"
fi

# --- Lint, then the suite -----------------------------------------------------------------
say "ruff check"
"$VENV/bin/ruff" check .
say "ruff format --check"
"$VENV/bin/ruff" format --check .

# DEBUG is off in the tests, so templates resolve static files through the production
# manifest storage: collect them first, as a deployment would.
say "collectstatic"
"$VENV/bin/python" manage.py collectstatic --noinput -v0

# Known vulnerabilities in the pinned requirements fail the run; an advisory service that cannot
# be reached (no network) is a warning, and the tests still run.
say "pip-audit (pinned requirements)"
"$VENV/bin/python" scripts/audit.py

# Two processes by default (pytest-xdist), one per core of the machines this runs on; each has
# its own test database and Redis database (tests/conftest.py). TEST_WORKERS=0 runs in one.
# Files go out in collection order, where tests/conftest.py puts the longest tests first
# (xdist's default would send the many-test files first and leave the longest for the end).
workers=${TEST_WORKERS:-2}
say "pytest -n $workers $*"
exec "$VENV/bin/pytest" -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
