from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "apps.identity"

    def ready(self) -> None:
        from . import otp  # noqa: F401  (connects the login signal that marks sessions owing a code)
