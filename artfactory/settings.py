"""Art Factory settings: one module, driven by environment variables.

With no environment at all it runs on SQLite, local media files and the
offline demo provider. PostgreSQL, an external Redis and S3-compatible
storage switch on when their variables are set.
"""
from decimal import Decimal, InvalidOperation
import json
import secrets
import warnings
from pathlib import Path
from typing import Any, Callable

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
LOCAL_ENV_FILE = BASE_DIR / ".env"

env = environ.Env()
if LOCAL_ENV_FILE.exists():
    environ.Env.read_env(LOCAL_ENV_FILE, overwrite=False)

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def _strict_bool(name: str, default: bool) -> bool:
    """Read a boolean, refusing anything that is not clearly true or false."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of "
        f"{sorted(TRUE_WORDS | FALSE_WORDS - {''})}"
    )


def _read(name: str, cast: Callable[[str], Any], default: Any) -> Any:
    """Read and convert a variable; a malformed value names the variable."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is malformed: {exc}") from exc


def _db_config(url: str) -> dict[str, Any]:
    """Parse a database URL, refusing schemes Django has no backend for."""
    scheme = url.split("://", 1)[0]
    if "://" not in url or scheme not in environ.Env.DB_SCHEMES:
        raise ValueError("expected e.g. postgres://user@host:5432/name or sqlite:///path")
    return environ.Env.db_url_config(url)


def _base_url(raw: str) -> str:
    """An http(s) origin (and optional path) without a trailing slash."""
    url = raw.strip().rstrip("/")
    if url and not url.startswith(("https://", "http://")):
        raise ValueError("expected e.g. https://factory.example.com")
    return url


def _local_secret_key() -> str:
    """Generate a secret key once, kept in the git-ignored .env file."""
    key = secrets.token_urlsafe(50)
    with LOCAL_ENV_FILE.open("a", encoding="utf-8") as handle:
        handle.write(f"SECRET_KEY={key}\n")
    LOCAL_ENV_FILE.chmod(0o600)
    return key


# ---------------------------------------------------------------- core
DEBUG = _strict_bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "admin_ext.apps.AdminExtConfig",  # first: its templates override unfold's
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_jsonform",
    "import_export",
    "django_rq",
    "axes",
    "factory.apps.FactoryConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Staff pages hand out the pass that media requests check without a query.
    "factory.views.media.MediaPassMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "artfactory.urls"
WSGI_APPLICATION = "artfactory.wsgi.application"
ASGI_APPLICATION = "artfactory.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# ---------------------------------------------------------------- database
DATABASES = {
    "default": _read(
        "DATABASE_URL",
        _db_config,
        {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "db.sqlite3")},
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A fresh clone has no var/ yet; SQLite cannot create the directory.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A file, not memory, so worker processes started by tests share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(DATABASES["default"]["NAME"]).with_suffix(".test.sqlite3"))
    }
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
# Workers and foremen reuse a connection across jobs and ticks; a broken
# one is noticed by the health check before use.
DATABASES["default"]["CONN_MAX_AGE"] = _read("DB_CONN_MAX_AGE", int, 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- database pool
# On PostgreSQL every process shares a bounded pool of connections among its
# threads, so a burst of users waits for a free connection (DB_POOL_TIMEOUT)
# instead of opening one each and exhausting max_connections. The web
# server's config sizes DB_POOL_MAX_SIZE to its threads; DB_POOL_MAX_SIZE=0
# turns pooling off (then DB_CONN_MAX_AGE applies, one connection a thread).
DB_POOL_MIN_SIZE = _read("DB_POOL_MIN_SIZE", int, 1)
DB_POOL_MAX_SIZE = _read("DB_POOL_MAX_SIZE", int, 4)
DB_POOL_TIMEOUT = _read("DB_POOL_TIMEOUT", float, 10.0)


def _pool_options(min_size: int, max_size: int, timeout: float) -> dict[str, Any]:
    """psycopg's pool options for Django, refusing sizes that cannot work."""
    if min_size < 0 or max_size < max(1, min_size):
        raise ImproperlyConfigured(
            f"DB_POOL_MIN_SIZE={min_size} and DB_POOL_MAX_SIZE={max_size} are "
            "malformed: expected 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE, "
            "DB_POOL_MAX_SIZE >= 1 (or 0 to turn pooling off)"
        )
    if timeout <= 0:
        raise ImproperlyConfigured(f"DB_POOL_TIMEOUT={timeout} must be above 0")
    return {"min_size": min_size, "max_size": max_size, "timeout": timeout}


if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Admin pages sum and count over large tables in a few milliseconds each;
    # PostgreSQL's JIT compiler would spend a second compiling such plans
    # (the projects list at 100,000 ledger entries: 1.4-1.9 s with it, 70 ms
    # without). DB_OPTIONS adds libpq options of one's own.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = " ".join(
        ["-c jit=off", env.str("DB_OPTIONS", default="")]).strip()

if DATABASES["default"]["ENGINE"].endswith("postgresql") and DB_POOL_MAX_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool_options(
        DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE, DB_POOL_TIMEOUT
    )
    # A pooled connection goes back to the pool after each request or job.
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# ---------------------------------------------------------------- serving
# Static files first (they need no session), then the security headers,
# then compression of what the views render.
MIDDLEWARE[1:1] = [
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "artfactory.middleware.ContentSecurityPolicyMiddleware",
    "artfactory.middleware.TextGZipMiddleware",
]

# ---------------------------------------------------------------- auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AXES_FAILURE_LIMIT = _read("AXES_FAILURE_LIMIT", int, 10)
AXES_COOLOFF_TIME = 1  # hours
# One person's typos lock that username from that address only, not every
# account behind a shared office address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "admin_ext.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
ADMIN_LOGIN_FILE = VAR_DIR / "admin-login.txt"
ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="admin")

# ---------------------------------------------------------------- i18n
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- files
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        # Signed URLs stable per MEDIA_URL_WINDOW_SECONDS: see factory/media/s3.py.
        "BACKEND": "factory.media.s3.StableUrlS3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "querystring_auth": _strict_bool("AWS_QUERYSTRING_AUTH", default=True),
            "file_overwrite": False,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default=None),
            # A file opened for reading is fetched whole first: above this
            # size into a temporary file, not memory (zips read many).
            "max_memory_size": 8 * 1024 * 1024,
            "querystring_expire": _read("AWS_QUERYSTRING_EXPIRE", int, 24 * 3600),
            # Content-hash names never change, so neither do their bytes.
            "object_parameters": {"CacheControl": "private, max-age=31536000, immutable"},
        },
    }
# A signed media URL stays the same this long, so browsers can cache it.
MEDIA_URL_WINDOW_SECONDS = _read("MEDIA_URL_WINDOW_SECONDS", int, 6 * 3600)
SERVE_MEDIA = _strict_bool("SERVE_MEDIA", default=not AWS_STORAGE_BUCKET_NAME)
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

# ---------------------------------------------------------------- static serving
# WhiteNoise serves static files from the web process itself. The web server
# (artfactory/gunicorn.conf.py) turns STATIC_MANIFEST on: `collectstatic`
# has stored hashed, compressed copies, served with far-future cache headers.
# Off (tests, `make dev`): files come from the apps' folders, unhashed.
STATIC_MANIFEST = _strict_bool("STATIC_MANIFEST", default=False)
if STATIC_MANIFEST:
    STORAGES["staticfiles"] = {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    }
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG
if not STATIC_MANIFEST:
    # Files come from the apps: an empty or missing STATIC_ROOT is expected.
    warnings.filterwarnings("ignore", message="No directory at: ")

# ---------------------------------------------------------------- redis / rq
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL={REDIS_URL!r} is malformed: expected redis://host:port/db"
    )
# Job timeouts: a submit is one bounded provider call. Collect jobs get
# theirs from their lease (factory/production/queues.py).
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("submit", 300), ("collect", 600), ("default", 600))
}
RQ_SHOW_ADMIN_LINK = False
# Jobs run inside the worker process: see factory/production/worker.py.
RQ = {"WORKER_CLASS": "factory.production.worker.ProductionWorker"}

# ---------------------------------------------------------------- providers
FAL_KEY = env.str("FAL_KEY", default="")
REPLICATE_API_TOKEN = env.str("REPLICATE_API_TOKEN", default="")
CIVITAI_API_TOKEN = env.str("CIVITAI_API_TOKEN", default="")
FAL_QUEUE_URL = env.str("FAL_QUEUE_URL", default="https://queue.fal.run/")
REPLICATE_BASE_URL = env.str("REPLICATE_BASE_URL", default="https://api.replicate.com")
CIVITAI_BASE_URL = env.str(
    "CIVITAI_BASE_URL", default="https://orchestration.civitai.com"
)
FAL_API_URL = env.str("FAL_API_URL", default="https://api.fal.ai")
FAL_SUBMIT_TIMEOUT = _read("FAL_SUBMIT_TIMEOUT", float, 120.0)
PROVIDER_READ_TIMEOUT_SECONDS = _read("PROVIDER_READ_TIMEOUT_SECONDS", float, 20.0)

# ---------------------------------------------------------------- webhooks
# Where providers reach this server; empty: no webhooks, polling only.
WEBHOOK_BASE_URL = _read("WEBHOOK_BASE_URL", _base_url, "")
FAL_WEBHOOK_KEYS = _read("FAL_WEBHOOK_KEYS", json.loads, None)
FAL_WEBHOOK_JWKS_URL = env.str(
    "FAL_WEBHOOK_JWKS_URL", default="https://rest.fal.ai/.well-known/jwks.json"
)
REPLICATE_WEBHOOK_SECRET = env.str("REPLICATE_WEBHOOK_SECRET", default="")
DEMO_LATENCY_SECONDS = _read("DEMO_LATENCY_SECONDS", float, 0.5)

# ---------------------------------------------------------------- production
FOREMAN_TICK_SECONDS = _read("FOREMAN_TICK_SECONDS", float, 1.0)
FOREMAN_POLL_SECONDS = _read("FOREMAN_POLL_SECONDS", float, 2.0)
# Polls of long runs stretch up to this; with a webhook coming, an item is
# polled no sooner than the fallback (factory/production/pacing.py).
FOREMAN_MAX_POLL_SECONDS = _read("FOREMAN_MAX_POLL_SECONDS", float, 30.0)
FOREMAN_WEBHOOK_POLL_SECONDS = _read("FOREMAN_WEBHOOK_POLL_SECONDS", float, 15.0)
FOREMAN_BATCH_SIZE = _read("FOREMAN_BATCH_SIZE", int, 100)
FOREMAN_SWEEP_EVERY = _read("FOREMAN_SWEEP_EVERY", int, 10)
FOREMAN_POLL_THREADS = _read("FOREMAN_POLL_THREADS", int, 8)
# How long a foreman holds the batch it polls; above any status call's time.
FOREMAN_CLAIM_SECONDS = _read("FOREMAN_CLAIM_SECONDS", float, 60.0)
PRODUCTION_SUBMIT_LEASE_SECONDS = _read("PRODUCTION_SUBMIT_LEASE_SECONDS", float, 600)
PRODUCTION_COLLECT_LEASE_SECONDS = _read("PRODUCTION_COLLECT_LEASE_SECONDS", float, 900)
PRODUCTION_PENDING_GRACE_SECONDS = _read("PRODUCTION_PENDING_GRACE_SECONDS", float, 30)
PRODUCTION_UNKNOWN_GRACE_SECONDS = _read("PRODUCTION_UNKNOWN_GRACE_SECONDS", float, 600)
PRODUCTION_SLOT_SECONDS = _read("PRODUCTION_SLOT_SECONDS", float, 900)
PRODUCTION_RETRY_DELAYS = (5, 20, 60, 180)
# Collections that find the provider's file host busy (429, 5xx) or
# unreachable: tries before the item fails, spaced by the delays above.
PRODUCTION_DOWNLOAD_TRIES = _read("PRODUCTION_DOWNLOAD_TRIES", int, 6)
PRODUCTION_MAX_RETRIES = {"default": 4}

# ---------------------------------------------------------------- downloads
DOWNLOAD_MAX_BYTES = _read("DOWNLOAD_MAX_BYTES", int, 200 * 1024 * 1024)
DOWNLOAD_TIMEOUT_SECONDS = _read("DOWNLOAD_TIMEOUT_SECONDS", float, 120.0)
DOWNLOAD_ALLOW_HTTP = _strict_bool("DOWNLOAD_ALLOW_HTTP", default=False)
DOWNLOAD_ALLOWED_PRIVATE_HOSTS = env.list("DOWNLOAD_ALLOWED_PRIVATE_HOSTS", default=[])

# ---------------------------------------------------------------- ordering
ORDER_ITEM_CEILING = _read("ORDER_ITEM_CEILING", int, 1000)


def _amount(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError("must be a finite amount of at least 0")
    return value


# Placing from the order form asks once more above this estimated cost.
ORDER_CONFIRM_ABOVE = _read("ORDER_CONFIRM_ABOVE", _amount, Decimal("1.00"))

# ---------------------------------------------------------------- dashboard
# Each web process keeps the dashboard's figures (items in flight, newest
# products and orders, spend) this many seconds; 0 reads them every time.
DASHBOARD_CACHE_SECONDS = _read("DASHBOARD_CACHE_SECONDS", float, 5.0)

# ---------------------------------------------------------------- deployment
# HTTPS=1 says the site is reached over HTTPS only: Django then redirects
# plain HTTP, marks its cookies secure and sends HSTS. Each setting can still
# be set on its own. Behind a proxy that terminates TLS, also set
# SECURE_PROXY_SSL_HEADER=1 so Django trusts the proxy's X-Forwarded-Proto
# (only when the proxy always sets it: a client could send it otherwise).
HTTPS = _strict_bool("HTTPS", default=False)
if _strict_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = _strict_bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = _strict_bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", int, 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _strict_bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS
)
SECURE_HSTS_PRELOAD = _strict_bool("SECURE_HSTS_PRELOAD", default=HTTPS)

# ---------------------------------------------------------------- content security policy
# Sent on every response by artfactory.middleware. What the admin needs:
# - script-src 'unsafe-eval': unfold ships Alpine.js's standard build, which
#   compiles every x-data/x-on expression in its templates with Function();
#   Alpine's CSP build cannot run those expressions. No inline scripts.
# - style-src 'unsafe-inline': unfold's theme colours (<style>), style=""
#   attributes in unfold's and our templates, htmx's indicator styles.
# - django-rq's pages (superusers only) carry inline scripts and onclick
#   handlers, so CSP_INLINE_SCRIPT_PATHS also allow 'unsafe-inline' scripts.
# Media kept in S3 comes from the bucket's origin: CSP_MEDIA_ORIGINS.
CSP_MEDIA_ORIGINS = env.list(
    "CSP_MEDIA_ORIGINS", default=["https:"] if AWS_STORAGE_BUCKET_NAME else []
)
CSP_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'unsafe-eval'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:", *CSP_MEDIA_ORIGINS],
    "media-src": ["'self'", "blob:", *CSP_MEDIA_ORIGINS],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "frame-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}
CSP_INLINE_SCRIPT_PATHS = ["/admin/queues/"]
# Report violations in the browser's console without blocking anything.
CSP_REPORT_ONLY = _strict_bool("CSP_REPORT_ONLY", default=False)

# ---------------------------------------------------------------- inventory
# Most products one zip download may hold.
ZIP_MAX_PRODUCTS = _read("ZIP_MAX_PRODUCTS", int, 1000)

# ---------------------------------------------------------------- import/export
# Export needs the model's view permission, import its change permission
# (and add, where an import adds rows: admin_ext/data/admin.py).
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_USE_TRANSACTIONS = True

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"masked": {"()": "artfactory.secrets.MaskingFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "masked"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

from artfactory.unfold import UNFOLD  # noqa: E402  (data only)
