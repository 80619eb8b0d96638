from django.apps import AppConfig


class KindsConfig(AppConfig):
    name = "apps.kinds"

    def ready(self) -> None:
        # Registers the token-rotation runners with apps.operations.
        from . import rotations  # noqa: F401
