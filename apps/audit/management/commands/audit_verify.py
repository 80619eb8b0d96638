from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.audit import checkpoints
from apps.audit.chain import verify


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain and that it still reaches the latest checkpoint; "
        "exits non-zero naming the first bad event or the missing tail."
    )

    def handle(self, *args, **options):
        checked, bad, reason = verify()
        if bad is not None:
            raise CommandError(f"audit chain broken at event #{bad.pk} ({bad.at:%Y-%m-%d %H:%M:%S}): {reason}")
        try:
            point = checkpoints.latest()
        except checkpoints.CheckpointError as exc:
            raise CommandError(f"audit checkpoint unusable: {exc}") from exc
        if point is None:
            self.stdout.write(
                self.style.WARNING(
                    f"no checkpoint in {settings.AUDIT_CHECKPOINT_FILE}: a cut tail cannot be detected "
                    "(run `manage.py audit_checkpoint`, and beat every AUDIT_CHECKPOINT_SECONDS)"
                )
            )
        elif problem := checkpoints.check(point):
            raise CommandError(f"audit chain does not reach its checkpoint: {problem}")
        anchored = f", reaching the checkpoint of event #{point.id} ({point.at})" if point else ""
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} events verified{anchored}"))
