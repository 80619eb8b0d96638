from django.core.management.base import BaseCommand, CommandError

from apps.audit import checkpoints


class Command(BaseCommand):
    help = "Append the audit chain's head (id + hash, with a MAC) to the checkpoint sinks now."

    def handle(self, *args, **options):
        try:
            point = checkpoints.write()
        except OSError as exc:
            raise CommandError(f"could not write the checkpoint: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"checkpoint: event #{point.id} {point.hash[:16]}… at {point.at}"))
