"""Settings for Argo CD Portal, read from the environment only (see .env.example)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# PostgreSQL connections one process keeps in a pool and never exceeds (0: no pool, one connection per thread).
DB_POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", 0))


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        options = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            # With a pool (the web server over ASGI, see portal/asgi.py) a closed connection goes back to it.
            "CONN_MAX_AGE": 0 if DB_POOL_SIZE else 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {**options, "pool": {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 30}}
            if DB_POOL_SIZE
            else options,
        }
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path or ":memory:"}
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported")


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "ninja",
    "apps.core",
    "apps.simulator",
    "apps.instances",
    "apps.teams",
    "apps.identity",
    "apps.access",
    "apps.audit",
    "apps.operations",
    "apps.index",
    "apps.applications",
    "apps.kinds",
    "apps.governance",
    "apps.notifications",
]

MIDDLEWARE = [
    "apps.core.requestid.RequestIdMiddleware",
    "apps.core.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.hidden_chars.RevealHiddenCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "apps.audit.middleware.RefusalAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.identity.otp.SecondFactorMiddleware",  # a session owing its second factor reaches nothing else
    "axes.middleware.AxesMiddleware",
    "apps.core.middleware.PortalErrorPagesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "apps.core.status.unavailable",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {
    "default": database_from_url(DATABASE_URL)
    if DATABASE_URL
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "portal.sqlite3",
        # The demo runs web, worker, beat and indexer processes on one file: WAL lets readers and a writer
        # overlap, IMMEDIATE transactions queue writers instead of failing with "database is locked".
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
CSRF_FAILURE_VIEW = "apps.core.views.csrf_failure"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", 8 * 3600))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# Second factor (apps/identity/otp.py): platform admins must enrol an authenticator before anything else when on.
OTP_REQUIRED_FOR_ADMINS = env_bool("OTP_REQUIRED_FOR_ADMINS", False)
OTP_TOTP_ISSUER = "Argo CD Portal"
# Behind N trusted proxies, the client address is the Nth from the right in X-Forwarded-For.
PROXY_COUNT = int(os.environ.get("PROXY_COUNT", 0))
AXES_CLIENT_IP_CALLABLE = "apps.core.net.client_ip"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Credentials of Argo CD instances are encrypted with these Fernet keys; the first encrypts,
# all decrypt, so a new key can be put in front and old data re-encrypted (manage.py rotate_keys).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG=0")
    FIELD_ENCRYPTION_KEYS = ["ZGV2ZWxvcG1lbnQta2V5LWRvLW5vdC11c2UtaW4tcHI="]

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL and os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("REDIS_URL_PER_TEST_PROCESS"):
    # Parallel test processes (gw0, gw1, ...) each take their own Redis database below the given one, so the
    # real Celery worker of one process never takes another's tasks. The environment carries the result to the
    # processes a test starts (workers, servers), so they agree without deriving it again.
    _base = urlsplit(REDIS_URL)
    _db = int(_base.path.strip("/") or 0) - int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
    REDIS_URL = urlunsplit(_base._replace(path=f"/{_db}"))
    os.environ.update(REDIS_URL=REDIS_URL, REDIS_URL_PER_TEST_PROCESS="1")
if REDIS_URL:
    # Fail-soft: with Redis away a cache read misses and a write is dropped, so every page still answers (read
    # without the cache); the page says Redis is unreachable (apps.core.status).
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portal_cache"}}
    broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_dir / "out"),
        "data_folder_out": str(broker_dir / "out"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
    (VAR_DIR / "results").mkdir(exist_ok=True)
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # operation state lives in the database, not in Celery results
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 3600))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600, "socket_connect_timeout": 3}
# A worker outlives a broker outage of any length: it retries forever instead of exiting after 100 attempts, and
# a running operation goes on (it follows Argo CD and the database; its restored message finds the row claimed).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A consuming worker refreshes a heartbeat this often; none for three periods means no worker is consuming.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_SECONDS", 10))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Seconds an operation keeps checking an unreachable Argo CD ("result unknown, still checking") before it
# ends as "result unknown"; stays well below CELERY_TASK_TIME_LIMIT.
OPERATION_UNREACHABLE_GRACE = float(os.environ.get("OPERATION_UNREACHABLE_GRACE", 300))

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Only the portal's own files run and style pages: no inline script or style, no eval, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
# plain: readable lines for the demo; json: one JSON object per line with a request_id (apps/core/requestid.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {
        "expected_refusal": {"()": "apps.core.logfilters.ExpectedRefusalWithoutTraceback"},
        "request_id": {"()": "apps.core.requestid.RequestIdFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "axes": {"level": "WARNING"},
        # One line per request with its view, status and time: the access log of the JSON logs. In plain logs the
        # server's own access log says the same.
        "portal.request": {"level": "INFO" if LOG_FORMAT == "json" else "WARNING"},
        # Django's default config gives "django" a console handler of its own (with DEBUG=1) and lets it
        # propagate to ours too, which printed each of its records twice: the root handler is enough.
        "django": {"handlers": []},
        "django.request": {"filters": ["expected_refusal"]},
    },
}

# The audit chain's head is checkpointed to sinks outside the database (apps/audit/checkpoints.py): a file of
# JSON lines (put it on storage the database's owner cannot rewrite), and syslog when AUDIT_CHECKPOINT_SYSLOG is
# "host:port" (UDP) or a socket path. The MAC key must not be stored in the database; SECRET_KEY when unset.
AUDIT_CHECKPOINT_FILE = Path(os.environ.get("AUDIT_CHECKPOINT_FILE") or VAR_DIR / "audit-checkpoints.jsonl")
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
AUDIT_CHECKPOINT_SYSLOG = os.environ.get("AUDIT_CHECKPOINT_SYSLOG", "")
AUDIT_CHECKPOINT_SECONDS = int(os.environ.get("AUDIT_CHECKPOINT_SECONDS", 60))

# How often beat looks for due scheduled syncs/rollbacks (apps/governance/schedules.py).
SCHEDULES_BEAT_SECONDS = float(os.environ.get("SCHEDULES_BEAT_SECONDS", 30))

# API keys the portal creates for itself on an instance live this long, and beat rotates them this many
# days before they expire.
PORTAL_TOKEN_LIFETIME_DAYS = int(os.environ.get("PORTAL_TOKEN_LIFETIME_DAYS", 90))
PORTAL_TOKEN_ROTATE_WITHIN_DAYS = int(os.environ.get("PORTAL_TOKEN_ROTATE_WITHIN_DAYS", 14))
# The longest lifetime a person may give an API token (days); every token must expire.
API_TOKEN_MAX_DAYS = int(os.environ.get("API_TOKEN_MAX_DAYS", 365))
ARGOCD_TIMEOUT = (float(os.environ.get("ARGOCD_CONNECT_TIMEOUT", 3)), float(os.environ.get("ARGOCD_READ_TIMEOUT", 30)))

# Bounds on every YAML/JSON document a person submits (apps/core/documents.py): size in bytes, nesting depth,
# YAML alias uses and the values those aliases add once expanded.
DOCUMENT_MAX_BYTES = int(os.environ.get("DOCUMENT_MAX_BYTES", 1 << 20))
DOCUMENT_MAX_DEPTH = int(os.environ.get("DOCUMENT_MAX_DEPTH", 100))
YAML_MAX_ALIASES = int(os.environ.get("YAML_MAX_ALIASES", 100))
YAML_MAX_ALIAS_NODES = int(os.environ.get("YAML_MAX_ALIAS_NODES", 10_000))
# Live streams (log follow) one person may hold open at once, counted across every web process in the cache.
STREAMS_PER_USER = int(os.environ.get("STREAMS_PER_USER", 4))

# /metrics (apps/core/metrics.py): a scrape must bring METRICS_TOKEN as a Bearer token and/or come from one of
# METRICS_ALLOWED_CIDRS; with neither set the page is closed. PROMETHEUS_MULTIPROC_DIR: a directory shared by
# every web, worker and indexer process (emptied when they all start) so one scrape sums their counters.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
try:
    METRICS_ALLOWED_CIDRS = [ipaddress.ip_network(cidr, strict=False) for cidr in env_list("METRICS_ALLOWED_CIDRS")]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_CIDRS: {exc}") from None
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# Single sign-on with any OpenID Connect provider (apps/identity/oidc.py); off while OIDC_ISSUER is empty.
# The provider's discovery document (<issuer>/.well-known/openid-configuration) gives every endpoint.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").rstrip("/")
OIDC_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
OIDC_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile groups")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "single sign-on")
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set too")
if OIDC_ISSUER and "openid" not in OIDC_SCOPES.split():
    raise ImproperlyConfigured(f"OIDC_SCOPES must include openid, not {OIDC_SCOPES!r}")
# "on": anyone with a local password may log in; "admins-only": only platform admins (break-glass accounts).
LOCAL_LOGIN = os.environ.get("LOCAL_LOGIN", "on")
if LOCAL_LOGIN not in {"on", "admins-only"}:
    raise ImproperlyConfigured(f"LOCAL_LOGIN must be 'on' or 'admins-only', not {LOCAL_LOGIN!r}")

# The portal's public address, used for links in notifications (e.g. https://portal.example.com).
PORTAL_URL = os.environ.get("PORTAL_URL", "")

# Email notifications go through Django's SMTP backend; the password is only ever sent to the mail server.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (implicit TLS) exclude each other")
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", 10))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "argocd-portal@localhost")
# Webhook hosts that may resolve to internal addresses (loopback, private, link-local…), e.g. an in-cluster
# chat bridge; every other webhook must resolve to public addresses only, checked on save and at each delivery.
NOTIFY_ALLOWED_HOSTS = [host.lower() for host in env_list("NOTIFY_ALLOWED_HOSTS")]

# An approval request not decided within this many hours expires (apps/governance/approvals.py).
APPROVAL_TTL_HOURS = float(os.environ.get("APPROVAL_TTL_HOURS", 24))
