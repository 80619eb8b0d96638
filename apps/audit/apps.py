from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"

    def ready(self) -> None:
        # Logins happen inside django.contrib.auth and django-axes, not in a portal view, so their
        # signals are the one place an audit event can be written for them.
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from . import auth_events

        user_logged_in.connect(auth_events.logged_in, dispatch_uid="audit.logged_in")
        user_logged_out.connect(auth_events.logged_out, dispatch_uid="audit.logged_out")
        user_login_failed.connect(auth_events.login_failed, dispatch_uid="audit.login_failed")
        user_locked_out.connect(auth_events.locked_out, dispatch_uid="audit.locked_out")
