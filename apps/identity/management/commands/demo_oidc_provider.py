"""`manage.py demo_oidc_provider`: the demo's OpenID Connect provider (apps/identity/demo_oidc.py)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SECRET_ENV = "DEMO_OIDC_CLIENT_SECRET"


class Command(BaseCommand):
    help = "Run a small OpenID Connect provider with users from a JSON file (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
        parser.add_argument("--users-file", required=True, help='{"name": {"password", "groups", "email"}}')
        parser.add_argument("--client-id", default="argocd-portal")
        parser.add_argument("--redirect-uri", required=True, help="the portal's /oidc/callback/ address")

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("demo_oidc_provider is for development only; it refuses to run with DEBUG=0")
        # The client secret comes through the environment, not the command line other users can read in ps.
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            raise CommandError(f"set {SECRET_ENV} to the client secret the portal will use")
        from apps.identity.demo_oidc import Client, serve

        serve(opts["port"], opts["users_file"], Client(opts["client_id"], secret, opts["redirect_uri"]))
