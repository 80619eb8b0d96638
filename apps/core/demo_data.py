"""Demo seed: register the simulated instances, a platform admin and a delegated team."""

from __future__ import annotations

from django.contrib.auth import get_user_model


def seed_demo(
    instances: list[tuple[str, str]], admin_password: str, member_password: str
) -> list[tuple[str, str, str]]:
    from apps.instances.services import register_instance

    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="admin", defaults={"is_superuser": True})
    admin.is_superuser = True
    admin.set_password(admin_password)
    admin.save()
    for name, url in instances:
        register_instance(name=name, url=url, username="portal", password="portal-password")
    people = [("admin", admin_password, "platform admin: everything")]
    try:
        from apps.teams.demo import seed_teams
    except ImportError:
        return people
    return people + seed_teams(member_password)
