"""A rotated project token is shown once, to the person who asked for it, and then forgotten.

The rotation runner puts the new token, Fernet-encrypted, in the cache (Redis in production) under the
operation's id for at most TOKEN_TTL seconds — never in the database, the operation's result or the
audit log. Revealing it deletes it; whoever deletes it first is the only one to see it.
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.core.fields import decrypt, encrypt
from apps.operations.models import Operation

TOKEN_TTL = 3600


def _cache_key(op_id: int) -> str:
    return f"kinds:rotated-token:{op_id}"


def stash(op_id: int, token: str) -> None:
    cache.set(_cache_key(op_id), encrypt(token), TOKEN_TTL)


def waiting(op_id: int) -> bool:
    return cache.get(_cache_key(op_id)) is not None


def take(op_id: int) -> str:
    """The token, once; "" when it was already shown or has expired."""
    sealed = cache.get(_cache_key(op_id))
    if sealed is None or not cache.delete(_cache_key(op_id)):
        return ""
    return decrypt(sealed)


@require_http_methods(["GET", "POST"])
def reveal(request: HttpRequest, pk: int) -> HttpResponse:
    op = Operation.objects.filter(pk=pk, kind=Operation.Kind.ROTATE_PROJECT_TOKEN).first()
    if op is None or op.requested_by_id != request.user.pk:
        raise Http404("No token of yours is waiting here.")
    context = {"op": op, "available": waiting(op.pk)}
    if request.method == "POST":
        context["token"] = take(op.pk)
        context["available"] = False
    response = render(request, "kinds/reveal.html", context)
    response["Cache-Control"] = "no-store"
    return response
