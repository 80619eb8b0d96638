from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "apps.operations"

    def ready(self) -> None:
        from . import runners  # noqa: F401  (registers the built-in runners)
