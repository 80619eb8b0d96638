from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "apps.teams"
