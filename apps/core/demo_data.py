"""Demo seed: register the simulated instances, a platform admin and a delegated team."""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

from django.contrib.auth import get_user_model

from apps.argocd.errors import ArgoCDError
from apps.audit.service import Outcome, record
from apps.instances.models import Instance

log = logging.getLogger(__name__)
SYSTEM = SimpleNamespace(username="system", is_authenticated=False)


def seed_demo(
    instances: list[tuple[str, str, str]], admin_password: str, member_password: str
) -> list[tuple[str, str, str]]:
    """`instances` are (name, url, bootstrap API key). Returns (user name, password, what they may do)."""
    from apps.instances.services import register_instance

    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="admin", defaults={"is_superuser": True})
    admin.is_superuser = True
    admin.set_password(admin_password)
    admin.save()
    for name, url, bootstrap_key in instances:
        adopt_own_key(register_instance(name=name, url=url, token=bootstrap_key))
    people = [("admin", admin_password, "platform admin: everything")]
    from apps.governance.demo import seed_windows

    log.info("demo: %s", seed_windows())
    try:
        from apps.teams.demo import seed_teams
    except ImportError:
        return people
    people += seed_teams(member_password)
    from apps.governance.demo import seed_approvals_and_schedule

    return people + seed_approvals_and_schedule(member_password)


def adopt_own_key(instance: Instance) -> None:
    """Replace the bootstrap key an instance was registered with by an API key of the portal's own, then delete
    the bootstrap key in Argo CD (account token delete), so the only live key is the one the portal holds.

    (A pasted key is never revoked by the portal in general, since it may be shared; a bootstrap key is not.)
    """
    from apps.instances.services import API_KEY_TTL_SECONDS, update_instance

    bootstrap_id = instance.token_id
    with instance.client(retries=1) as client:
        own = client.create_account_token(
            instance.username, expires_in=API_KEY_TTL_SECONDS, token_id=f"portal-{uuid.uuid4().hex[:12]}"
        )
    update_instance(
        instance,
        request=None,
        url=instance.url,
        verify_tls=instance.verify_tls,
        ca_bundle=instance.ca_bundle,
        labels=instance.labels,
        enabled=instance.enabled,
        token=own,
    )
    outcome, error = Outcome.SUCCEEDED, ""
    try:
        with instance.client(retries=1) as client:
            client.delete_account_token(instance.username, bootstrap_id)
    except ArgoCDError as exc:  # it still expires on its own; say so rather than stop the demo
        outcome, error = Outcome.FAILED, str(exc)
        log.warning("%s: could not delete the bootstrap key %s: %s", instance.name, bootstrap_id, exc)
    record(
        None,
        user=SYSTEM,
        action="delete-token",
        outcome=outcome,
        instance=instance.name,
        kind="account",
        name=instance.username,
        payload={"credential_id": bootstrap_id, "reason": "bootstrap key replaced by the portal's own"},
        error=error,
    )
