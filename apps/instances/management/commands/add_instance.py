"""`manage.py add_instance NAME URL (--token T | --username U --password P) [--insecure] [--label k=v ...]`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.instances.forms import parse_labels
from apps.instances.services import InstanceConnectionError, register_instance


class Command(BaseCommand):
    help = "Register (or update, by name) an Argo CD instance after checking its credentials."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url")
        auth = parser.add_mutually_exclusive_group(required=True)
        auth.add_argument("--token", help="an Argo CD API token")
        auth.add_argument("--username", help="a local account, exchanged for an API key of that account")
        parser.add_argument("--password")
        parser.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
        parser.add_argument("--ca-bundle", help="path of a PEM file of CA certificates to trust")
        parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--disabled", action="store_true")

    def handle(self, *args, **opts):
        if opts["username"] and not opts["password"]:
            raise CommandError("--username needs --password")
        ca_bundle = ""
        if opts["ca_bundle"]:
            try:
                with open(opts["ca_bundle"], encoding="utf-8") as fh:
                    ca_bundle = fh.read()
            except OSError as exc:
                raise CommandError(f"cannot read the CA bundle: {exc}") from None
        try:
            labels = parse_labels("\n".join(opts["label"]))
            instance = register_instance(
                name=opts["name"],
                url=opts["url"],
                token=opts["token"],
                username=opts["username"],
                password=opts["password"],
                verify_tls=not opts["insecure"],
                ca_bundle=ca_bundle,
                labels=labels,
                enabled=not opts["disabled"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except InstanceConnectionError as exc:
            raise CommandError(str(exc)) from None
        expiry = instance.token_expires_at.isoformat() if instance.token_expires_at else "no expiry"
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {instance.name} ({instance.url}), Argo CD {instance.version or 'version unknown'}, "
                f"token {instance.token_id or 'set'} · expires {expiry}"
            )
        )
