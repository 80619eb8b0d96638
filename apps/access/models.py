from __future__ import annotations

from django.db import models

from apps.teams.models import Team


class Action(models.TextChoices):
    VIEW = "view", "View"
    SYNC = "sync", "Sync"
    ROLLBACK = "rollback", "Roll back"
    TERMINATE = "terminate", "Terminate"
    ACTION = "action", "Run resource action"
    LOGS = "logs", "Read logs"
    EDIT = "edit", "Edit"
    CREATE = "create", "Create"
    DELETE = "delete", "Delete"
    ROTATE = "rotate", "Rotate tokens"
    OVERRIDE = "override", "Override change windows (break glass)"
    AUTOSYNC = "autosync", "Turn automated sync on or off"
    REFRESH = "refresh", "Refresh"
    ADMIN = "admin", "Admin (everything)"


# Actions that `edit` already covered before they had their own name: a grant of `edit` keeps allowing them.
EDIT_IMPLIES = ("autosync", "refresh")


class Grant(models.Model):
    """A team may do `actions` on applications matching (instance, project, namespace, application) globs.

    Globs follow Argo CD's RBAC glob semantics: `*` matches any run of characters, `/` included.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="grants")
    instance_glob = models.CharField(max_length=200, default="*")
    project_glob = models.CharField(max_length=200, default="*")
    app_glob = models.CharField(max_length=200, default="*")
    # Argo CD's `project/namespace/name` form: the namespace the Application object lives in (not its destination).
    namespace_glob = models.CharField(max_length=253, default="*")
    actions = models.JSONField(default=list)
    # What the grant's actions may not do (see apps.access.decide.CONSTRAINTS); empty narrows nothing.
    constraints = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "instance_glob", "project_glob", "app_glob"]

    def __str__(self) -> str:
        ns = f"{self.namespace_glob}/" if self.namespace_glob != "*" else ""
        return f"{self.team}: {','.join(self.actions)} on {self.instance_glob}/{self.project_glob}/{ns}{self.app_glob}"

    def constraint_words(self) -> list[str]:
        from .decide import describe

        return describe(self.constraints)
