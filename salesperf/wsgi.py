"""WSGI entry point (gunicorn salesperf.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")
application = get_wsgi_application()
