from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "apps.identity"

    def ready(self) -> None:
        # The API token model lives in its own module (apps.identity.tokens); importing it registers it.
        from . import (
            otp,  # noqa: F401  (connects the login signal that marks sessions owing a code)
            tokens,  # noqa: F401
        )
