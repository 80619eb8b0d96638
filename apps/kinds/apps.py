from django.apps import AppConfig


class KindsConfig(AppConfig):
    name = "apps.kinds"
