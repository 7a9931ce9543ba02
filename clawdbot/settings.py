"""ClawDBot settings: one file, every difference between deployments read from the environment.

See SPEC §8 / README for the variables. Without ``DATABASE_URL`` an embedded PostgreSQL
under ``var/`` is used; without the secret variables, development secrets are generated
once into ``var/secrets.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

import csp.constants as csp
import environ

from clawdbot import devsecrets
from clawdbot.contract import WEBHOOK_TOLERANCE_S
from clawdbot.embedded_pg import server as embedded_pg
from feed_app.paths import INGEST_PATH

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLAWDBOT_VAR_DIR") or BASE_DIR / "var")
# /metrics (clawdbot/metrics.py): each process of this host counts into this directory. Set
# here, before prometheus_client is first imported, so that every process counts there.
METRICS_DIR = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "metrics")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
METRICS_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or devsecrets.load(VAR_DIR)["django"]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)
# Listening on every interface still reaches this server through the loopback address.
_LOCAL_HOST = "127.0.0.1" if HOST in ("0.0.0.0", "::", "") else HOST
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=sorted({"127.0.0.1", "localhost", "[::1]", _LOCAL_HOST})
)
# Peers whose X-Forwarded-For / -Proto / -Host are believed (comma-separated addresses or
# CIDRs); everyone else's forwarded headers are removed (clawdbot.forwarded). Empty: none.
CLAWDBOT_TRUSTED_PROXIES = env.str("CLAWDBOT_TRUSTED_PROXIES", default="")

INSTALLED_APPS = [
    "daphne",
    "clawdbot.console",  # before the admin: its admin/ templates take precedence
    "clawdbot.console.apps.ConsoleAdminConfig",  # django.contrib.admin, the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: no CDN at runtime
    "channels",
    "django_q",
    "corsheaders",
    "clawdbot.eventstore.apps.EventStoreConfig",
    "orchestrator_app",
    "feed_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# CORS: the public feed reads are readable from any page (no credentials); nothing else.
CORS_URLS_REGEX = r"^/api/milestones/(?!dead-letter$)"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_METHODS = ["GET", "HEAD", "OPTIONS"]
CORS_ALLOW_CREDENTIALS = False

ROOT_URLCONF = "clawdbot.urls"
ASGI_APPLICATION = "clawdbot.asgi.application"
WSGI_APPLICATION = None

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

# --- Database -------------------------------------------------------------------------
# The web server and worker connect as the runtime role (DATABASES["default"]), which may
# only read and append the event log; migrate, flush and test set-up connect as the owner
# (DATABASE_OWNER: user, password, host, port), see clawdbot/dbroles.py.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "clawdbot.postgres"  # test databases as the owner
    DATABASE_OWNER = (
        env.db_url("DATABASE_OWNER_URL") if env.str("DATABASE_OWNER_URL", default="") else {}
    )
    EMBEDDED_DATABASE = False
else:
    DATABASES = {
        "default": {
            "ENGINE": "clawdbot.embedded_pg",
            "VAR_DIR": str(VAR_DIR),
            **embedded_pg.connection_params(VAR_DIR),
        }
    }
    DATABASE_OWNER = embedded_pg.owner_params()
    EMBEDDED_DATABASE = True
if env.str("CLAWDBOT_DB_NAME", default=""):  # the benchmarks use a scratch database
    DATABASES["default"]["NAME"] = env.str("CLAWDBOT_DB_NAME")
# Under ASGI every request runs in a fresh thread, so per-thread persistent connections
# pile up (and ran the embedded server out of connections under load): the web server
# process sets DJANGO_DB_POOL_SIZE (clawdbot.serve.web_env) for a process-wide psycopg
# pool. Off elsewhere: a pool's open connections must not be inherited by forked workers.
DB_POOL_SIZE = env.int("DJANGO_DB_POOL_SIZE", default=0)
if DB_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2, "max_size": DB_POOL_SIZE, "timeout": 10,
    }
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
# The hot routes (ingest, feed latest) run on the event loop with an asyncio pool of their
# own per web process (clawdbot.asyncdb); one statement per request keeps it small.
ASYNC_DB_POOL_SIZE = env.int("CLAWDBOT_ASYNC_DB_POOL_SIZE", default=8)
ASYNC_DB_POOL_TIMEOUT_S = env.float("CLAWDBOT_ASYNC_DB_POOL_TIMEOUT_S", default=10.0)
# At most this many ingests of one web process go in one statement and commit
# (feed_app.group_commit); 1 turns grouping off (each request its own statement).
CLAWDBOT_INGEST_GROUP_MAX = env.int("CLAWDBOT_INGEST_GROUP_MAX", default=64)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DATABASES["default"]["TEST"] = {"NAME": env.str("DJANGO_TEST_DATABASE", default="test_clawdbot")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and the task queue --------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# No channel layer: live milestones reach every web process through PostgreSQL's
# LISTEN/NOTIFY (feed_app/live.py), with or without Redis; docs/ARCHITECTURE.md says why.
CHANNEL_LAYERS: dict[str, dict] = {}
# Origins, besides those of ALLOWED_HOSTS, whose pages may open the live WebSocket
# (``https://app.example.com``; ``*`` for any). clawdbot/asgi.py checks them.
CLAWDBOT_WS_ORIGINS = env.list("CLAWDBOT_WS_ORIGINS", default=[])
# Live-feed sockets one web process holds, in all and from one client address; past
# either, a new socket is closed at once with 1013 and the reason (docs/OPERATIONS.md).
CLAWDBOT_WS_MAX_PER_PROCESS = env.int("CLAWDBOT_WS_MAX_PER_PROCESS", default=5000)
CLAWDBOT_WS_MAX_PER_ADDRESS = env.int("CLAWDBOT_WS_MAX_PER_ADDRESS", default=100)
# Least milliseconds between two reads of a web process's live listener: milestones that
# commit within it reach each socket in one write (feed_app/live.py). 0 reads on every
# notification.
CLAWDBOT_LIVE_COALESCE_MS = env.float("CLAWDBOT_LIVE_COALESCE_MS", default=20.0)

Q_CLUSTER = {
    # Workers of one name share a queue: a Redis serving two deployments needs two names.
    "name": env.str("Q_CLUSTER_NAME", default="clawdbot"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 60,
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "orm": "default",
    "poll": 0.1,
    "save_limit": 1000,
    "ack_failures": True,
    "log_level": env.str("Q_LOG_LEVEL", default="WARNING"),
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# --- HTTP API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clawdbot.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ClawDBot milestone pipeline",
    "DESCRIPTION": "Signed milestone ingest, feed, dead-letter and orchestrator outbox.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Milestones (SPEC §8) ---------------------------------------------------------------
_dev_secrets = None


def _dev_secret(name: str) -> str:
    global _dev_secrets
    if _dev_secrets is None:
        _dev_secrets = devsecrets.load(VAR_DIR)
    return _dev_secrets[name]


MILESTONE_SIGNING_SECRET = env.str("MILESTONE_SIGNING_SECRET", default="") or _dev_secret("legacy")
MILESTONE_WEBHOOK_SECRET = env.str("MILESTONE_WEBHOOK_SECRET", default="") or _dev_secret(
    "webhook"
)
# Fernet keys for the targets' secrets at rest, comma-separated; the first encrypts
# (clawdbot/encryption.py).
CLAWDBOT_ENCRYPTION_KEY = env.str("CLAWDBOT_ENCRYPTION_KEY", default="") or _dev_secret(
    "encryption")
MILESTONE_INGEST_URL = env.str(
    "MILESTONE_INGEST_URL", default=f"http://{_LOCAL_HOST}:{PORT}{INGEST_PATH}"
)
# Seconds to wait after attempt 1, 2, …; attempts = 1 + len(schedule). The reference's
# schedule (SPEC §8): 8 attempts over about 27 hours. A quick first retry catches a
# restarting receiver; the long tail rides out an outage of a day. A target may override it.
MILESTONE_RETRY_SCHEDULE = env.str(
    "MILESTONE_RETRY_SCHEDULE", default="5,300,1800,7200,18000,36000,36000"
)
MILESTONE_LOG_PATH = Path(
    env.str("MILESTONE_LOG_PATH", default=str(BASE_DIR / "logs" / "milestones.jsonl"))
)
MILESTONE_INGEST_MAX_BYTES = env.int("MILESTONE_INGEST_MAX_BYTES", default=256 * 1024)
# Every other HTTP path: a request body past this is answered 413 unread (feed_app.asgi).
CLAWDBOT_REQUEST_MAX_BYTES = env.int("CLAWDBOT_REQUEST_MAX_BYTES", default=1024 * 1024)
# Rejections (SPEC §4): kept one by one up to this many per client address and minute,
# then counted in one aggregate row per reason; every rejection row expires after the
# retention period (feed_app.tasks.rejections_expire, hourly).
MILESTONE_REJECTION_DETAILS_PER_MINUTE = env.int(
    "MILESTONE_REJECTION_DETAILS_PER_MINUTE", default=20
)
MILESTONE_REJECTION_RETENTION_DAYS = env.int("MILESTONE_REJECTION_RETENTION_DAYS", default=30)
# POST /internal/milestones/ingest/batch (SPEC §10): up to 1,000 envelopes in 8 MiB.
MILESTONE_INGEST_BATCH_MAX_BYTES = env.int("MILESTONE_INGEST_BATCH_MAX_BYTES",
                                           default=8 * 1024 * 1024)
MILESTONE_WEBHOOK_TOLERANCE_S = env.int("MILESTONE_WEBHOOK_TOLERANCE_S",
                                        default=WEBHOOK_TOLERANCE_S)
CLAWDBOT_SEED = env.bool("CLAWDBOT_SEED", default=True)
# The pipeline reports its own delivery health as milestones (docs/EMITTING.md); at most
# one per target per window. `make run` turns it on.
CLAWDBOT_PIPELINE_MILESTONES = env.bool("CLAWDBOT_PIPELINE_MILESTONES", default=False)
CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S = env.float("CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S",
                                                 default=300.0)
# A worker's claim on a delivery lasts the target's timeout plus this margin (seconds).
MILESTONE_LEASE_MARGIN_S = env.float("MILESTONE_LEASE_MARGIN_S", default=30.0)
# Outbound requests to loopback, private, link-local and other non-public addresses (SSRF).
# On for the local demo, which delivers to itself on 127.0.0.1; production turns it off
# (docs/OPERATIONS.md), and `check --deploy` warns while it is on. Checked on the address
# each connection is actually made to, after resolution.
CLAWDBOT_OUTBOUND_ALLOW_PRIVATE = env.bool("CLAWDBOT_OUTBOUND_ALLOW_PRIVATE", default=True)
# Each django-q2 worker process runs an outbox dispatcher thread (0 turns it off).
MILESTONE_DISPATCHER = env.bool("MILESTONE_DISPATCHER", default=True)

# --- Security headers (docs/OPERATIONS.md, Production settings) ---------------------------
# Every response: Content-Security-Policy (inline <script>/<style> only with the request's
# nonce), X-Content-Type-Options: nosniff, Referrer-Policy, X-Frame-Options: DENY.
# feed_app.asgi.HotPaths reproduces these on the routes it answers itself.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.NONCE],
        "img-src": [csp.SELF, "data:"],  # Swagger UI's icons are data: URLs
        "connect-src": [csp.SELF],  # the live page's WebSocket, same origin
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy (CLAWDBOT_HTTPS=1): the proxy's X-Forwarded-Proto says a
# request came over HTTPS (the proxy must set it on every request), plain HTTP is
# redirected, HSTS is sent, and the session and CSRF cookies are Secure.
CLAWDBOT_HTTPS = env.bool("CLAWDBOT_HTTPS", default=False)
if CLAWDBOT_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("CLAWDBOT_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("CLAWDBOT_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("CLAWDBOT_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("CLAWDBOT_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# --- Static files, i18n, logging ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django.request logs every 4xx as a warning: a junk flood would fill the log with
    # what the dead-letter already records (boundedly). Errors (5xx) still log.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                "django.request": {"level": "ERROR"}},
}
