from django.core.management.base import BaseCommand, CommandError

from apps.audit.chain import verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exits non-zero naming the first bad event."

    def handle(self, *args, **options):
        checked, bad, reason = verify()
        if bad is not None:
            raise CommandError(f"audit chain broken at event #{bad.pk} ({bad.at:%Y-%m-%d %H:%M:%S}): {reason}")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} events verified"))
