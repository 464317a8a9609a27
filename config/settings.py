"""Tuneboard settings. Every value comes from the environment (see .env.example and README)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import dj_database_url
import django_stubs_ext
from cryptography.fernet import Fernet
from kombu import Queue

from config import locations
from config.env import (
    EnvError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_path,
    env_str,
    required_secret,
    validate_fernet_keys,
)

# Lets the classes that django-stubs types as generic be subscripted at run time too, as in
# ``class HeartbeatAdmin(admin.ModelAdmin[Heartbeat])``.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("TUNEBOARD_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)

# --- Production safety: secrets, the sandbox, where webhooks may post ---------------------------
# Secrets are never invented outside development: missing, they stop start-up with a message.
# `make run` and `make test` pass keys they keep under var/; DEBUG=true generates them there.
SECRET_KEY = required_secret(
    "SECRET_KEY",
    development_file=VAR_DIR / "secret_key" if DEBUG else None,
    factory=lambda: secrets.token_urlsafe(50),
)
if len(SECRET_KEY) < 50 and not DEBUG:
    raise EnvError("SECRET_KEY must be at least 50 characters long")

# Comma-separated Fernet keys; the first encrypts, all decrypt, so a key is rotated by putting
# the new one first and running `manage.py rotate_encryption_key` (see README).
FIELD_ENCRYPTION_KEYS = validate_fernet_keys(
    "FIELD_ENCRYPTION_KEY",
    env_list("FIELD_ENCRYPTION_KEY")
    or [
        required_secret(
            "FIELD_ENCRYPTION_KEY",
            development_file=VAR_DIR / "field_encryption_key" if DEBUG else None,
            factory=lambda: Fernet.generate_key().decode(),
        )
    ],
)

# The built-in sandbox (/sandbox/, its admin pages, its fault injection and its outgoing
# webhooks) exists only when enabled: `make run` and `make test` enable it, production does not.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", False)
SANDBOX_API_KEYS = env_list("SANDBOX_API_KEYS")
if SANDBOX_ENABLED and not SANDBOX_API_KEYS:
    SANDBOX_API_KEYS = [
        required_secret(
            "SANDBOX_API_KEYS",
            development_file=VAR_DIR / "sandbox_api_key" if DEBUG else None,
            factory=lambda: "sk-sandbox-" + secrets.token_urlsafe(24),
        )
    ]

# Webhook URLs (notifications, the sandbox's) must resolve to public addresses only; these
# networks are allowed although loopback, private, link-local or reserved (tests: loopback).
WEBHOOK_ALLOWED_NETWORKS = env_networks("WEBHOOK_ALLOWED_NETWORKS")
# --- end of production safety ---------------------------------------------------------------------

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Form widgets' templates, for FORM_RENDERER below.
    "django.forms",
    # In layer order: each app may import only the apps above it (see README, Architecture).
    "core",
    "datasets",
    "jobs",
    "evals",
    "dashboard",
    "sandbox",
    # django-ninja: the REST API's docs page serves its own swagger-ui files (no CDN).
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 503 instead of 500 while PostgreSQL is away; before anything loads the session or user.
    "core.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "core.middleware.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Templates parsed once per process, in every environment (tests and benchmarks
            # measure what production runs): Django's default since 4.1, written out so that
            # it stays so. The dev server's autoreloader still resets it on a template change.
            # APP_DIRS must not be set alongside "loaders".
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.role_flags",
            ],
            # Money, durations, dates, counts and status badges: one format on every page.
            "builtins": ["core.templatetags.core_format"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or locations.default_database_url(VAR_DIR),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise EnvError("DATABASE_URL must point to PostgreSQL (postgres://…)")
# Widgets render through TEMPLATES, so templates/ can override one of Django's (the admin's
# date-and-time boxes get accessible names: templates/admin/widgets/split_datetime.html).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    # The apps' static files, without what no page loads (core.staticfinders).
    "core.staticfinders.AppFilesFinder",
    "core.staticfinders.PlotlyFinder",
]
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names let WhiteNoise send far-future immutable cache headers, and it serves
        # the Brotli or gzip copy the browser accepts (plotly.js: 4.8 MB, 1.1 MB as Brotli,
        # 1.5 MB as gzip). DEBUG serves from the finders.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "core.staticstorage.CompressedStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Pages name static files only through {% static %}, so only the hashed copies are served: the
# plain names are not kept (nor compressed: that halves the work of each collectstatic).
WHITENOISE_KEEP_ONLY_HASHED_FILES = True

# Security: safe by default, relaxed only by explicit environment variables.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Abuse: login throttling (django-axes) and Content-Security-Policy (django-csp) -----------
INSTALLED_APPS += ["axes", "csp"]
MIDDLEWARE += [
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: turns a lockout noticed while authenticating into its page.
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    # Refuses to authenticate while the account or the client address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins are counted per account and per client address, each on its own: either one
# reaching the limit within the cool-off blocks logins (shown on the login page, HTTP 429) until
# the cool-off has passed without a failure. Attempts are rows in the admin (Axes › Access
# attempts); deleting one unlocks, as does `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success must not wipe the failures: anyone with an account could log in between guesses at
# another account from the same address and reset both counts.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
# Reverse proxies in front of Tuneboard that append the client to X-Forwarded-For (0: the
# connection's address is the client's). See core/client_ip.py.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)

# Only Tuneboard's own files run or style a page: no inline script, and no style attribute or
# <style> element of ours (page data travels in <script type="application/json">, which is never
# executed). plotly.js adds two <style> elements of its own. It skips the one of its own rules
# when the page has an element with id "plotly.js-style-global" and class "no-inline-styles":
# templates/_plotly.html links static/css/plotly.css, which holds those rules, under that id.
# The other, the bundled map library's fixed stylesheet, is allowed by the hash of its exact
# text. tests/e2e/plotly_css.py derives both from the installed bundle, and a browser test fails
# when they fall out of step. Images may be blob: URLs: plotly's PNG download draws through one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"],
        "img-src": [csp.SELF, "blob:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# Celery: JSON only, late acks, one task at a time per process, explicit limits and queues.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or locations.default_broker_url(VAR_DIR)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
# Tasks that wait on a provider (launches, syncs, controls, import and evaluation steps) stop
# sooner: a hanging provider frees the worker slot long before the global limit, and the
# stopped work is retried or resumed (its lease, the poller, the next step), never lost.
PROVIDER_TASK_TIME_LIMIT = env_int(
    "PROVIDER_TASK_TIME_LIMIT",
    min(300, CELERY_TASK_TIME_LIMIT),
    minimum=2,
    maximum=CELERY_TASK_TIME_LIMIT,
)
PROVIDER_TASK_SOFT_TIME_LIMIT = env_int(
    "PROVIDER_TASK_SOFT_TIME_LIMIT",
    min(240, PROVIDER_TASK_TIME_LIMIT - 1),
    minimum=1,
    maximum=PROVIDER_TASK_TIME_LIMIT - 1,
)
# A message reserved by a worker that died comes back after this. It must outlast the longest
# task (a running task would be delivered a second time) and the longest retry countdown;
# work whose worker died is sent again much sooner by the reaper (leases, core/leases.py).
_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 60, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    # Sweep for tasks of dead workers often enough that a short visibility timeout matters.
    "unacked_restore_interval": max(1, min(10, _VISIBILITY_TIMEOUT // 2)),
    "unacked_restore_throttle": 1,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Work that waits on a provider has a queue of its own (and its own worker under `make run`),
# so a slow or hanging provider holds up only provider work: never the validations, the
# heartbeat, the reaper or the poller.
CELERY_TASK_QUEUES = (Queue("default"), Queue("polling"), Queue("validation"), Queue("provider"))
CELERY_TASK_ROUTES = {
    "jobs.tasks.poll_*": {"queue": "polling"},
    # Launches, syncs and the controls asked for on a page (job_control_task: cancel, pause,
    # resume, sync now, model deletion) all call the provider.
    "jobs.tasks.job_*": {"queue": "provider"},
    "jobs.tasks.import_*": {"queue": "provider"},
    # Model lists and price quotes (jobs.catalogs) ask the provider too.
    "jobs.tasks.catalog*": {"queue": "provider"},
    "jobs.tasks.price_quote_*": {"queue": "provider"},
    "evals.tasks.*": {"queue": "provider"},
    "datasets.tasks.*": {"queue": "validation"},
}
CELERY_TASK_ALWAYS_EAGER = False
HEARTBEAT_INTERVAL = env_int("HEARTBEAT_INTERVAL", 15, minimum=1)
POLL_INTERVAL = env_int("POLL_INTERVAL", 15, minimum=1)
# A running job whose page someone has open is synced this often (seconds) instead, for
# JOB_WATCH_SECONDS after the page last polled, and at most WATCHED_SYNC_LIMIT such quick syncs
# per connection in any WATCHED_SYNC_WINDOW seconds (each sync costs two or more provider
# requests): the rest wait for the normal interval, so many open pages stay within the
# provider's rate limits. WATCHED_SYNC_LIMIT=0 turns quick syncs off.
WATCHED_POLL_INTERVAL = env_int("WATCHED_POLL_INTERVAL", 3, minimum=1)
JOB_WATCH_SECONDS = env_int("JOB_WATCH_SECONDS", 30, minimum=1)
WATCHED_SYNC_LIMIT = env_int("WATCHED_SYNC_LIMIT", 40, minimum=0)
WATCHED_SYNC_WINDOW = env_int("WATCHED_SYNC_WINDOW", 60, minimum=1)
# Most list pages one sync (or an import's job listing) requests before giving up with an
# error on the job: a provider whose paging never ends cannot hold a worker.
SYNC_MAX_PAGES = env_int("SYNC_MAX_PAGES", 500, minimum=1)
# Processes that validate one large dataset file at once (the Celery worker's process plus
# VALIDATION_PROCESSES - 1 worker processes it starts for that file): one per core by default.
# Files under VALIDATION_PARALLEL_MIN_MB MiB are validated in one pass, in the task's process:
# for them the workers and the merge cost more than the second core gives. 1 turns parallel
# validation off.
VALIDATION_PROCESSES = env_int("VALIDATION_PROCESSES", os.cpu_count() or 1, minimum=1)
VALIDATION_PARALLEL_MIN_MB = env_int("VALIDATION_PARALLEL_MIN_MB", 16, minimum=0)
# Seconds a worker's claim on a piece of work (validation, launch, import, evaluation) lasts
# without being renewed, and how long queued work may wait before the reaper sends it again.
WORK_LEASE_SECONDS = env_int("WORK_LEASE_SECONDS", 60, minimum=1)
# Beat records its own ticks (config.celery.TickingScheduler): its liveness in /healthz does
# not depend on a worker being free to run a task.
CELERY_BEAT_SCHEDULER = "config.celery:TickingScheduler"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "core.tasks.worker_heartbeat",
        "schedule": timedelta(seconds=HEARTBEAT_INTERVAL),
        "options": {"expires": HEARTBEAT_INTERVAL},
    },
    "work-reaper": {
        "task": "core.tasks.work_reap",
        "schedule": timedelta(seconds=HEARTBEAT_INTERVAL),
        "options": {"expires": HEARTBEAT_INTERVAL},
    },
    # As often as a watched job is due (claiming due jobs is one indexed UPDATE).
    "poll-due-jobs": {
        "task": "jobs.tasks.poll_due_jobs",
        "schedule": timedelta(seconds=min(POLL_INTERVAL, WATCHED_POLL_INTERVAL)),
        "options": {"expires": min(POLL_INTERVAL, WATCHED_POLL_INTERVAL)},
    },
    # Sweeps launch their next run when one ends (the sync asks at once); this catches a
    # launch that failed without a sync and a lost task.
    "advance-sweeps": {
        "task": "jobs.tasks.sweeps_advance_due",
        "schedule": timedelta(seconds=POLL_INTERVAL),
        "options": {"expires": POLL_INTERVAL},
    },
    # Providers that list their fine-tunable models change the list and the limits now and
    # then (jobs.catalogs); a connection's save and the launch page's button refresh it too.
    "refresh-model-catalogs": {
        "task": "jobs.tasks.catalogs_refresh_all",
        "schedule": timedelta(hours=24),
        "options": {"expires": 3600},
    },
}
# /healthz reports beat (its own ticks) and the workers (the heartbeat task) as stale after
# this many missed heartbeats.
HEARTBEAT_STALE_AFTER = timedelta(
    seconds=HEARTBEAT_INTERVAL * env_float("HEARTBEAT_GRACE", 3, minimum=1)
)

# First-run setup (`tuneboard_bootstrap`, run by `make run`): the first admin account when there
# is no user, and an "OpenAI" connection when OPENAI_API_KEY is set.
TUNEBOARD_ADMIN_USER = env_str("TUNEBOARD_ADMIN_USER")
TUNEBOARD_ADMIN_PASSWORD = env_str("TUNEBOARD_ADMIN_PASSWORD")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1") or ""

# Absolute links in notifications point here.
TUNEBOARD_BASE_URL = (env_str("TUNEBOARD_BASE_URL", "http://localhost:8000") or "").rstrip("/")

# Outgoing email (job notifications), SMTP as in Django.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "tuneboard@localhost")

# Provider HTTP clients (seconds); retries back off exponentially with jitter.
PROVIDER_CONNECT_TIMEOUT = env_float("PROVIDER_CONNECT_TIMEOUT", 5, minimum=0.1)
PROVIDER_READ_TIMEOUT = env_float("PROVIDER_READ_TIMEOUT", 60, minimum=0.1)
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 4, minimum=0, maximum=20)
# A launch or price quote that failed transiently is sent again after about this many seconds
# (doubling with each attempt, jittered, at most 120 s).
PROVIDER_TASK_RETRY_BACKOFF = env_int("PROVIDER_TASK_RETRY_BACKOFF", 5, minimum=1, maximum=120)
# Calls a page waits on (the connection test, the playground): connecting and reading within
# this many seconds in all, one attempt. Everything else runs in workers with the values above.
PROVIDER_INTERACTIVE_TIMEOUT = env_float("PROVIDER_INTERACTIVE_TIMEOUT", 10, minimum=1)

# Evaluations: chat completions in flight per connection, tries per cell (transient errors),
# and the most examples one evaluation takes from its dataset.
EVAL_CONCURRENCY_PER_CONNECTION = env_int(
    "EVAL_CONCURRENCY_PER_CONNECTION", 4, minimum=1, maximum=64
)
EVAL_MAX_ATTEMPTS = env_int("EVAL_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
EVAL_MAX_EXAMPLES = env_int("EVAL_MAX_EXAMPLES", 1000, minimum=1)

# Datasets: uploads are streamed to storage; anything larger is refused while streaming.
DATASET_MAX_UPLOAD_BYTES = env_int("DATASET_MAX_UPLOAD_BYTES", 1024**3, minimum=1)

# The built-in OpenAI-compatible sandbox (/sandbox/v1/; SANDBOX_ENABLED above).
# Simulated seconds per training step (0 = instant); 0.2 makes a 100-example, 3-epoch job
# (300 steps at batch size 1) take about a minute.
SANDBOX_SECONDS_PER_STEP = env_float("SANDBOX_SECONDS_PER_STEP", 0.2, minimum=0)
# Requests one API key may make in any SANDBOX_RATE_LIMIT_WINDOW seconds (sliding window, counted
# in the broker's Redis); more get OpenAI's 429 with Retry-After. 0 turns the limit off; a key's
# account can set its own (POST /sandbox/control/account {"rate_limit": N}).
SANDBOX_RATE_LIMIT = env_int("SANDBOX_RATE_LIMIT", 6000, minimum=0)
SANDBOX_RATE_LIMIT_WINDOW = env_int("SANDBOX_RATE_LIMIT_WINDOW", 60, minimum=1, maximum=86_400)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"pgserver": {"level": "WARNING"}},
}
