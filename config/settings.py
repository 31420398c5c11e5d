"""Django settings for RefusalLab, read from environment variables (12-factor)."""

import hashlib
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only for local development: a fixed key would let anyone forge sessions in production.
    SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.admin.RefusalLabAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "studies",
    "annotation",
    "modellab",
]

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",
    "config.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The Content-Security-Policy header, chosen by path (participant, researcher, admin, docs).
    "config.csp.PathPolicyMiddleware",
    "studies.middleware.CoderOnlyAccountsMiddleware",
    # Last, as django-axes asks: it turns a sign-in refused for a lock-out into our 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/refusallab"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # A health check is one more round trip on every request. Without it a connection the
        # server dropped (a restart) fails one request per worker with the 503 page, and Django
        # then closes it (it had errors), so the next request reconnects by itself.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
}
# A database that does not answer fails the request (the 503 page) within this many seconds,
# instead of holding the participant's page for the operating system's TCP timeout.
DB_CONNECT_TIMEOUT = int(os.environ.get("DB_CONNECT_TIMEOUT", "3"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
# A process that must not share the checkout's collected files (the benchmark) sets its own.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.static_finders.PlotlyFinder",
]
# Static files are served the production way in every mode, DEBUG (the demo) included: collected
# by collectstatic, gzip-compressed, hashed names cached for a year (immutable), the rest for a
# minute. STATIC_LIVE=1 is for editing them: served as they are from static/ and the packages
# (no collect, no hashes, no cache). Never for the demo or production.
STATIC_LIVE = env_bool("STATIC_LIVE", False)
WHITENOISE_AUTOREFRESH = STATIC_LIVE
WHITENOISE_USE_FINDERS = STATIC_LIVE
WHITENOISE_MAX_AGE = 0 if STATIC_LIVE else 60
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if STATIC_LIVE
            else "config.static_storage.HashedStaticStorage"
        )
    },
}

# django-axes first: it refuses a locked-out account before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "studies.accounts.UsernameOrEmailBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in lock-out (django-axes, its records in PostgreSQL: the login path is not the
# participant path). AXES_FAILURE_LIMIT wrong passwords for one account from one address lock
# that pair, never the whole address (an office shares one), for AXES_COOLOFF_MINUTES, doubled
# for each further lock-out of the pair within a day since its last successful sign-in, up to
# AXES_COOLOFF_MAX_HOURS. The login page, POST /api/token/ and the admin login all sign in
# through AUTHENTICATION_BACKENDS, so one lock covers all three; a success resets the count.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Not the "AXES: BEGIN …" banner on every command and process start.
AXES_VERBOSE = env_bool("AXES_VERBOSE", False)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_MINUTES = int(os.environ.get("AXES_COOLOFF_MINUTES", "15"))
AXES_COOLOFF_MAX_HOURS = int(os.environ.get("AXES_COOLOFF_MAX_HOURS", "24"))
AXES_COOLOFF_TIME = "studies.accounts.login_cool_off"
AXES_HANDLER = "studies.accounts.LoginLockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The address the arrival limits use too: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies
# the address they saw.
AXES_CLIENT_IP_CALLABLE = "annotation.arrivals.client_address"
# "ada" and "ada@example.org" are one account, so they share one count.
AXES_USERNAME_CALLABLE = "studies.accounts.lockout_username"
AXES_LOCKOUT_CALLABLE = "studies.views.accounts.locked_out"
AXES_RESET_ON_SUCCESS = True
# Each failure's lock ends on its own expiry (the cool-off in force when it happened), so one
# account's longer lock-out is not cleaned away by another's shorter one.
AXES_USE_ATTEMPT_EXPIRATION = True
# Tries while locked are refused without counting: they neither extend the lock nor grow the next.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The failure log remembers earlier lock-outs after their attempts expire: the back-off reads it.
AXES_ENABLE_ACCESS_FAILURE_LOG = True

# Password-reset and account e-mails: printed to the console unless SMTP is configured.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "RefusalLab <noreply@localhost>")

# An uploaded stimuli file waits here between its preview and the researcher's confirmation.
STIMULI_UPLOAD_DIR = Path(os.environ.get("STIMULI_UPLOAD_DIR", BASE_DIR / "var" / "uploads"))
STIMULI_UPLOAD_MAX_BYTES = int(os.environ.get("STIMULI_UPLOAD_MAX_BYTES", str(5 * 1024 * 1024)))
STIMULI_UPLOAD_MAX_AGE = int(os.environ.get("STIMULI_UPLOAD_MAX_AGE", "3600"))

# Export files (studies.datasets.exports) are written here and deleted this many hours after
# they were made (the beat sweep marks the job expired); downloads go through a checked view.
EXPORT_ROOT = Path(os.environ.get("EXPORT_ROOT", BASE_DIR / "var" / "exports"))
EXPORT_EXPIRY_HOURS = int(os.environ.get("EXPORT_EXPIRY_HOURS", "72"))
# An export still running this long lost its worker without a redelivery: failed by the sweep.
EXPORT_RUNNING_LIMIT_MINUTES = int(os.environ.get("EXPORT_RUNNING_LIMIT_MINUTES", "240"))

# Recruitment ids (Prolific's participant id) are stored encrypted with these Fernet keys
# (annotation.recruitment_ids): comma-separated, the first encrypts, all decrypt; to rotate, put
# a new key first, run `manage.py rotate_recruitment_keys`, then drop the old one. Unset with
# DEBUG on: a development key derived from SECRET_KEY. Unset with DEBUG off: raw ids are not
# stored at all (a warning in the log and in `check --deploy`).
RECRUITMENT_ID_KEYS = env_list("RECRUITMENT_ID_KEYS")

# Hosts a model's requests (and its API key) may be sent to: comma-separated host names,
# "*.example.org" wildcards. Empty allows loopback hosts only.
MODEL_HOSTS_ALLOWED = env_list("MODEL_HOSTS_ALLOWED", "localhost,127.0.0.1,[::1]")

# Researchers' sessions live in PostgreSQL. Participants have none: a signed cookie per study
# names their participant (annotation.browser), so their pages read or write no session row
# and never wait on Redis.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Limits on new participants (COUNT/SECONDS; 0 turns one off), counted in Redis and let through
# when it is down. Per address: a class or an office behind one NAT joins together, so allow a
# room's worth; per study: a recruitment burst of hundreds in the first minutes.
ARRIVALS_PER_ADDRESS = os.environ.get("ARRIVALS_PER_ADDRESS", "40/300")
ARRIVALS_PER_STUDY = os.environ.get("ARRIVALS_PER_STUDY", "1200/60")
# Behind N reverse proxies that append to X-Forwarded-For, the client is the Nth address from
# the end; 0 (default) trusts only REMOTE_ADDR.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# The key of the participants' device hashes (annotation.devices, the duplicate check): its
# own secret, or one derived from SECRET_KEY so that a leaked hash says nothing about either.
DEVICE_KEY_SECRET = (
    os.environ.get("DEVICE_KEY_SECRET", "")
    or hashlib.sha256(f"refusallab-device-key:{SECRET_KEY}".encode()).hexdigest()
)
ARRIVAL_LIMIT_CACHE = "arrivals"
RESULTS_PAGE_CACHE = "results_pages"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    ARRIVAL_LIMIT_CACHE: {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get(
            "CACHE_URL",
            os.environ.get(
                "CELERY_BROKER_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
            ),
        ),
        # Loopback Redis answers in well under a millisecond; past this it counts as down.
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        "KEY_PREFIX": "refusallab",
    },
    # What the results page shows of a stored analysis (figures as JSON, tables, sentences):
    # built by the worker right after computing it, read by every web process. Researcher
    # pages only; without Redis the page builds them itself.
    RESULTS_PAGE_CACHE: {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get(
            "CACHE_URL",
            os.environ.get(
                "CELERY_BROKER_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
            ),
        ),
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 1.0},
        "KEY_PREFIX": "refusallab-results",
        "TIMEOUT": 7 * 24 * 3600,
    },
}

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp; config/csp.py picks the policy by path). Every asset is
# ours (whitenoise, no CDN), so 'self' is all any page needs, plus these exceptions:
# - researcher pages: script nonces (request.csp_nonce) for the few inline scripts we render
#   (the results page's Plotly figure calls, the API docs' Swagger UI start-up);
# - chart pages (CSP_CHART_VIEWS): style-src 'unsafe-inline', because plotly.js styles the
#   charts it draws with inline style attributes and <style> rules. No 'unsafe-eval': our
#   trace types (bar, scatter) draw as SVG; WebGL traces (scattergl, splom, parcoords) would
#   need it, and tests/security/test_csp_browser.py fails on any eval that gets blocked;
# - admin (superusers only): style-src 'unsafe-inline' for the inline <style> Django's admin
#   templates render (change_list.html, for a model admin without actions).
# Participant pages (/s/) get none of these: no inline script or style at all.
_CSP_STRICT = {
    "default-src": [CSP_SELF],
    "script-src": [CSP_SELF],
    "style-src": [CSP_SELF],
    "img-src": [CSP_SELF, "data:"],
    "object-src": [CSP_NONE],
    "base-uri": [CSP_NONE],
    "frame-ancestors": [CSP_NONE],
    "form-action": [CSP_SELF],
}
# A violation report endpoint, e.g. a collector's URL, added to every policy when set.
# (Not named CSP_REPORT_URI in settings: django-csp 4 refuses its 3.x setting names.)
CSP_VIOLATION_REPORT_URI = os.environ.get("CSP_REPORT_URI", "")
if CSP_VIOLATION_REPORT_URI:
    _CSP_STRICT["report-uri"] = [CSP_VIOLATION_REPORT_URI]
CSP_PARTICIPANT_PREFIX = "/s/"
CSP_PARTICIPANT_DIRECTIVES = _CSP_STRICT
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        **_CSP_STRICT,
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF, CSP_NONCE],
    },
}
CSP_CHART_VIEWS = {"studies:detail", "studies:results"}
CSP_CHART_DIRECTIVES = {
    **CONTENT_SECURITY_POLICY["DIRECTIVES"],
    "style-src": [CSP_SELF, CSP_UNSAFE_INLINE],
}
CSP_ADMIN_PREFIX = "/admin/"
CSP_ADMIN_DIRECTIVES = {
    **CONTENT_SECURITY_POLICY["DIRECTIVES"],
    "style-src": [CSP_SELF, CSP_UNSAFE_INLINE],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RefusalLab API",
    "DESCRIPTION": "Design, fill, launch and watch perception studies of LLM guardrails.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar, served by the platform: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Path parameters say what the URL accepts, so clients (and schemathesis) stay on routes.
    "PATH_CONVERTER_OVERRIDES": {
        "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
        "int": {"type": "integer", "minimum": 0},
        "str": {"type": "string", "pattern": "^[^/]+$"},
    },
    # Several models have a "status" or "role": each set of choices gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "StudyStatusEnum": "studies.models.Study.Status",
        "MemberRoleEnum": "studies.models.StudyMembership.Role",
        "JobStatusEnum": "studies.models.GenerationJob.Status",
        "AnalysisStatusEnum": "studies.models.AnalysisResult.Status",
        "ReviewStatusEnum": "studies.models.ResponseVariant.ReviewStatus",
        # Both material generators' jobs share one status set (modellab.models.material).
        "MaterialJobStatusEnum": "modellab.models.material.JobStatus",
    },
}

# Celery: Redis is the broker, PostgreSQL holds the truth (job rows), so results are not kept.
CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
)
# A batch whose worker died unacknowledged goes back on the queue after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
# A request that queues a task fails fast when the broker is down (config/dispatch.py says so
# and marks the row failed) instead of retrying the publish for many seconds.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# A job still queued after this many minutes was never taken by a worker (lost message, no
# worker on its queue): the beat sweep marks it failed, so its study can be computed again.
JOB_QUEUED_LIMIT_MINUTES = int(os.environ.get("JOB_QUEUED_LIMIT_MINUTES", "15"))
# An analysis running this long lost its worker without a redelivery: failed by the same sweep.
ANALYSIS_RUNNING_LIMIT_MINUTES = int(os.environ.get("ANALYSIS_RUNNING_LIMIT_MINUTES", "120"))
# /metrics: with a token, only `Authorization: Bearer <token>`; without, loopback clients only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# bench/participant_load.py's floor page (/bench/floor/): mounted only when this is on.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)

# A live study's results are recomputed by the beat sweep (every 30 s) once participants have
# completed since the last computation was requested, so a completion is in the results within
# a minute; this spaces two automatic computations of one study (0: no spacing beyond one open
# computation at a time).
ANALYSIS_REFRESH_MINUTES = int(os.environ.get("ANALYSIS_REFRESH_MINUTES", "0"))
CELERY_BEAT_SCHEDULE = {
    "release-expired-slots": {
        "task": "annotation.tasks.release_expired_slots",
        "schedule": 60.0,
    },
    # Quality rules run on participants about a minute after they finish (never in their request).
    "screen-finished-participants": {
        "task": "annotation.tasks.screen_finished_participants",
        "schedule": 60.0,
    },
    "refresh-live-analyses": {
        "task": "studies.tasks.refresh_live_analyses",
        "schedule": 30.0,
    },
    "fail-unstarted-generation-jobs": {
        "task": "studies.tasks.fail_unstarted_generation_jobs",
        "schedule": 300.0,
    },
    "fail-unstarted-false-refusal-runs": {
        "task": "modellab.false_refusal.tasks.fail_unstarted_false_refusal_runs",
        "schedule": 300.0,
    },
    "fail-unstarted-reward-runs": {
        "task": "modellab.rewards.tasks.fail_unstarted_reward_runs",
        "schedule": 300.0,
    },
    "fail-unstarted-pseudo-harmful-jobs": {
        "task": "modellab.pseudo_harmful.tasks.fail_unstarted_pseudo_harmful_jobs",
        "schedule": 300.0,
    },
    "fail-unstarted-query-scenario-jobs": {
        "task": "modellab.query_scenarios.tasks.fail_unstarted_query_scenario_jobs",
        "schedule": 300.0,
    },
    # Export files past their expiry are deleted; exports no worker took are failed.
    "expire-exports": {
        "task": "studies.tasks.expire_exports",
        "schedule": 600.0,
    },
    # Raw recruitment ids of studies closed longer ago than their retention_days.
    "erase-expired-recruitment-ids": {
        "task": "annotation.tasks.erase_expired_recruitment_ids",
        "schedule": 3600.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
