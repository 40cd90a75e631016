"""salesperf settings: one module, driven by environment variables (see .env.example).

Every variable is read and validated by ``salesperf.config.read_config``; a bad
value stops the start with a message that names it. When DATABASE_URL or
REDIS_URL is unset, embedded servers are started (``salesperf.embedded``).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from salesperf import embedded
from salesperf.config import parse_bool, read_config, redis_url_for_cache

BASE_DIR = Path(__file__).resolve().parent.parent

# A .env file in the project folder is read for local development; real
# environment variables win over it. Tests that try production values skip it.
if not os.environ.get("SALESPERF_SKIP_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
CONFIG = read_config(os.environ)

if CONFIG.database is None:
    # Exported so that processes started from this one (workers, tests' subprocesses)
    # reuse the same server instead of asking again.
    os.environ["DATABASE_URL"] = embedded.database_url()
if CONFIG.redis_url is None:
    os.environ["REDIS_URL"] = embedded.redis_url()
CONFIG = read_config(os.environ)
assert CONFIG.database is not None and CONFIG.redis_url is not None

DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = CONFIG.csrf_trusted_origins
PORT = CONFIG.port
BASE_CURRENCY = CONFIG.base_currency
TESTING = "pytest" in sys.modules

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",  # Bootstrap 5 CSS/JS served by the app itself (django-bootstrap-static)
    "axes",
    "django_celery_beat",
    "salesperf",  # project-wide management commands (ensure_database)
    "accounts",
    "leads",
    "goals",
    "feedback",
    "reminders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "salesperf.urls"
WSGI_APPLICATION = "salesperf.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": {**CONFIG.database, "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}}
# No JIT compilation: company-wide dashboard queries cross PostgreSQL's JIT cost
# threshold and spent 40 ms to 4 s compiling plans that run in milliseconds.
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"]["options"] = (
    DATABASES["default"]["OPTIONS"].get("options", "") + " -c jit=off"
).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = CONFIG.redis_url
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url_for_cache(REDIS_URL),
        "KEY_PREFIX": "salesperf-test" if TESTING else "salesperf",
    }
}

# --- Accounts and authentication -------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses while a lockout is in force
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing with the real PBKDF2 makes every login in the suite slow; the
    # production hasher is covered by Django's own tests.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Login throttling per (username, IP) with a cool-off: one office behind one IP
# is never locked out as a whole, and a locked account on one IP can still log
# in from another.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = 0

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("pt-br", _("Brazilian Portuguese")),
    ("sv", _("Swedish")),
    ("it", _("Italian")),
    ("ru", _("Russian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = CONFIG.time_zone  # the company's time zone: day boundaries of KPIs

# --- Sales process (DESIGN.md) ----------------------------------------------
# Temperature from the buying timeframe: hot if the decision is at most this
# many days away, warm within the second; cold beyond it or without a timeframe.
LEAD_HOT_DAYS = 30
LEAD_WARM_DAYS = 90
# Weighted pipeline: an open estimate counts for its amount times the
# probability of its lead's stage (estimates without a lead: "sql").
PIPELINE_STAGE_PROBABILITIES = {
    "suspect": 0.05,
    "cold": 0.05,
    "warm": 0.10,
    "hot": 0.20,
    "mql": 0.25,
    "sql": 0.50,
}

# --- Goals, dashboards and recognition (goals) ---------------------------------
# The sales standard (seed 004): estimates issued each month worth at least this
# many times the revenue quota, on every product line.
ESTIMATE_COVERAGE_STANDARD = Decimal("3.0")
# Pace of a goal (actual / (target x elapsed share)): at or above ON_TRACK is on
# track, below AT_RISK is at risk, in between is behind.
GOAL_PACE_ON_TRACK = Decimal("1.0")
GOAL_PACE_AT_RISK = Decimal("0.8")
# Balanced scorecard per rep (seed 000: quality of sales, not only quantity):
# the weight of each part; they need not add up to 1 (they are normalised).
SCORECARD_WEIGHTS = {
    "volume": Decimal("0.25"),
    "conversion": Decimal("0.20"),
    "average_ticket": Decimal("0.10"),
    "cycle_time": Decimal("0.10"),
    "repeat_business": Decimal("0.15"),
    "satisfaction": Decimal("0.20"),
}

# --- Reminders and digests (reminders) ------------------------------------------
REMINDER_CHECK_IN_DAYS = 30  # check in with the customer this many days after a won deal
# A lead without contact for this many days, by temperature.
REMINDER_LEAD_NO_CONTACT_DAYS = {"hot": 2, "warm": 7, "cold": 30}
REMINDER_ESTIMATE_EXPIRING_DAYS = 3  # remind this many days before an open estimate expires
REMINDER_GOAL_PACE_BELOW = Decimal("0.8")  # a goal below this pace at mid-period is behind
SQL_RESPONSE_WORKING_DAYS = 1  # an SQL lead must be contacted within this many working days
DIGEST_LOCAL_HOUR = 8  # the daily digest goes out at this hour of each user's own time zone
REMINDER_CLAIM_TIMEOUT = timedelta(minutes=10)  # a claimed email not sent by then is given back
REMINDER_MAX_ATTEMPTS = 5  # then the email is marked failed (shown on the ops page)

# --- Customer satisfaction (feedback) -------------------------------------------
SURVEY_SEND_DELAY = timedelta(days=1)  # a won deal's survey goes this long after it is recorded
SURVEY_THROTTLE_DAYS = (
    30  # no new survey to a customer surveyed (or with one waiting) this recently
)
SURVEY_LINK_VALID_DAYS = 30  # a survey link works this long after it was first sent
SURVEY_REMINDER_AFTER_DAYS = 3  # the one reminder, if unanswered
SURVEY_RATE_LIMIT = (60, 60)  # requests per IP address to the public survey page: (count, seconds)
SURVEY_CLAIM_TIMEOUT = timedelta(minutes=10)  # a claimed email not sent by then is given back
CASE_DEADLINE_WORKING_DAYS = 2  # follow-up case deadline, Mon-Fri in TIME_ZONE
COMPANY_HOLIDAYS: list[str] = []  # ISO dates that are not working days
COMPANY_NAME = (
    ""  # survey emails come "from Rep · COMPANY_NAME"; empty: the DEFAULT_FROM_EMAIL name
)

# --- Static files (served by whitenoise; no CDN) ----------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email --------------------------------------------------------------------
vars().update(CONFIG.email)
# A hung SMTP server must not hold a worker until the task's 5-minute soft limit;
# the claim timeouts (10 min) > the task time limits (5/6 min) > this.
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
# Links in emails (and other places without a request) point here.
SITE_URL = CONFIG.site_url
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery (settings under CELERY_, read by salesperf/celery.py) ------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # tasks record their outcome in PostgreSQL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged after it ran, and given back to the queue when the
# worker dies under it: nothing is lost; tasks are written to be safe to repeat.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 5 * 60
CELERY_TASK_TIME_LIMIT = 6 * 60
# Above the longest task, or Redis would hand a running task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The suite runs tasks in-process when they are queued; the one test that runs
# a real worker against Redis turns this off for itself.
CELERY_TASK_ALWAYS_EAGER = TESTING
CELERY_TASK_EAGER_PROPAGATES = TESTING

# --- Security -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # templates read it for forms only through {% csrf_token %}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Off only where a proxy in front already redirects to HTTPS.
    SECURE_SSL_REDIRECT = parse_bool(
        "SECURE_SSL_REDIRECT", os.environ.get("SECURE_SSL_REDIRECT", "true")
    )
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
