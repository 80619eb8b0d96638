"""The web server's entry point: gunicorn with uvicorn workers (docker-compose.yml), or uvicorn (`make demo`).

Streams (log follow) are async views that wait on the event loop, so an open stream holds no request thread;
every other view stays sync Django, run by Django on a thread of its own per request. Static files are served
by WhiteNoise's middleware, as under WSGI.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Under ASGI each request's sync code runs on a thread of its own and nothing bounds how many run at once, while
# Django keeps a database connection per thread. A pool bounds PostgreSQL connections per process (a burst waits
# for one instead of failing with "too many clients") and lets requests reuse them.
os.environ.setdefault("DB_POOL_SIZE", "10")
application = get_asgi_application()
