"""The web server's entry point: gunicorn with uvicorn workers (docker-compose.yml), or uvicorn (`make demo`).

Streams (log follow) are async views that wait on the event loop, so an open stream holds no request thread;
every other view stays sync Django, run by Django on a thread of its own per request. Static files are served
by WhiteNoise's middleware, as under WSGI.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Each request's sync code runs on a new thread under ASGI, and Django keeps database connections per thread:
# a connection kept for reuse would never be reused, only left open. Close it when the request ends.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
application = get_asgi_application()
