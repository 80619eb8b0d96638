"""`follow()` against reads that lag behind a request, as Argo CD's cached reads may.

The simulator answers reads from its live state, so a lagging read is played here by a stand-in for the
client that hands out a scripted sequence of application reads.
"""

from __future__ import annotations

import pytest

from apps.operations import runners
from apps.operations.models import Operation

pytestmark = pytest.mark.django_db

OLD = {"phase": "Succeeded", "message": "old sync", "startedAt": "2026-01-01T00:00:00Z", "operation": {"sync": {}}}


class Reads:
    """A client whose get_application returns the given apps in turn (the last one again when they run out)."""

    def __init__(self, *apps: dict) -> None:
        self.apps = list(apps)

    def get_application(self, name: str, **scope) -> dict:
        return self.apps.pop(0) if len(self.apps) > 1 else self.apps[0]


def app(state: dict, operation: dict | None = None) -> dict:
    return {"status": {"operationState": state}, **({"operation": operation} if operation else {})}


@pytest.fixture
def op():
    return Operation.objects.create(kind=Operation.Kind.ROLLBACK, state=Operation.State.RUNNING, attempts=1, target="a")


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(runners, "POLL_SECONDS", 0.01)


def test_a_read_still_showing_the_state_from_before_the_request_is_not_taken_as_the_end(op):
    new = {"phase": "Succeeded", "message": "rolled back", "startedAt": "2026-01-02T00:00:00Z", "operation": {}}
    client = Reads(app(OLD), app(OLD), app({**new, "phase": "Running"}, {"sync": {}}), app(new))
    assert runners.follow(op, client, before=OLD)["message"] == "rolled back"


def test_an_operation_that_never_shows_fails_after_a_while(op, monkeypatch):
    monkeypatch.setattr(runners, "NOT_SHOWN_SECONDS", 0.05)
    with pytest.raises(runners.OperationFailed, match="still does not show this operation"):
        runners.follow(op, Reads(app(OLD)), before=OLD)


def test_a_sync_of_ours_is_followed_past_a_lagging_read(op):
    ours = {"info": [{"name": runners.INFO_OPERATION, "value": str(op.pk)}], "sync": {}}
    done = {"phase": "Succeeded", "message": "ours", "startedAt": "2026-01-02T00:00:00Z", "operation": ours}
    client = Reads(app(OLD), app({**done, "phase": "Running"}, ours), app(done))
    assert runners.follow(op, client, mine=True, before=OLD)["message"] == "ours"
