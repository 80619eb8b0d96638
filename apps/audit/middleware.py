"""Every request the portal refuses (403) or answers "not found" (404) leaves an audit event.

Views that refuse with what they know (`require()`, `probe()`: the instance, kind and name asked for) record
the denial themselves; this catches every other refusal and probe (a guessed audit event or operation id, a
page for platform admins, a form whose CSRF check failed) with the path that was asked for.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .service import Outcome, record

REFUSALS = {403: "answered 403: refused", 404: "answered 404: not found, or not visible"}


class RefusalAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        refused = REFUSALS.get(response.status_code)
        # Anonymous visitors only ever reach the login page and the health probes; a refusal already
        # recorded by the view is not written twice.
        if refused and user is not None and user.is_authenticated and not getattr(request, "refusal_audited", False):
            record(request, action=request.method.lower(), outcome=Outcome.DENIED, kind="page",
                   name=request.path[:253], error=refused, payload={"path": request.get_full_path()[:500]})  # fmt: skip
        return response
