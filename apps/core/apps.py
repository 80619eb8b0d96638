from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"

    def ready(self) -> None:
        from . import requestid  # noqa: F401  (connects the Celery signals that carry the request id)
