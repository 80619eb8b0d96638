"""Token rotations run as Operations. Rule for all three: never leave a locked-out credential.

- The portal's own instance token: create new → verify it → store it → delete the old one. A failure
  before "store" keeps the old credential; a failure after it leaves the new one, verified, in place.
- A project role token: create new (shown once to the requester, see reveal.py) → wait the grace period
  the requester picked → delete the old one. The old one keeps working until then.
- Cluster auth: Argo CD's rotate-auth, then check the cluster still answers.

Runners are re-run after a dead worker (acks_late + the reaper), so each step first looks at what the
previous attempt already did (kept in `op.result`, which never holds a secret).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from apps.argocd import ArgoCDError, errors
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.operations.runners import POLL_READ_TIMEOUT, OperationFailed, runner, update

from .reveal import stash

DEFAULT_TOKEN_SECONDS = settings.PORTAL_TOKEN_LIFETIME_DAYS * 86400
HEARTBEAT_SECONDS = 5.0


def claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT: enough to read its id (jti), iat and exp. Never logged."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def _instance(op: Operation) -> Instance:
    inst = Instance.objects.filter(pk=op.instance_id, enabled=True).first()
    if inst is None:
        raise OperationFailed(f"Instance {op.instance_name or '?'} is not registered or is disabled.")
    return inst


def _argo(step: str, fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ArgoCDError as exc:
        raise OperationFailed(f"{step}: {exc.message}") from exc


# ---------------------------------------------------------------- the portal's own credential
@runner(Operation.Kind.ROTATE_INSTANCE_TOKEN)
def rotate_instance_token(op: Operation) -> None:
    inst = _instance(op)
    expires_in = int(op.params.get("expires_in") or DEFAULT_TOKEN_SECONDS)
    done = op.result or {}
    if done.get("new_token_id") and done.get("new_token_id") == inst.token_id:
        old_id, username = done.get("old_token_id", ""), done.get("username", "")
        update(op, progress=70, message="new token already stored by an earlier attempt; deleting the old one")
    else:
        with inst.client(read_timeout=POLL_READ_TIMEOUT, retries=1) as current:
            username = _argo("reading the portal's account", current.userinfo).get("username", "")
            if not username:
                raise OperationFailed("Argo CD did not say which account the portal uses (userinfo).")
            update(op, progress=15, message=f"creating a new token for account {username}")
            new_id = f"portal-{op.pk}-{int(time.time())}"
            token = _argo("creating the new token", current.create_account_token, username, expires_in, new_id)
        update(op, progress=40, message="checking that the new token works")
        try:
            with inst.client(token=token, read_timeout=POLL_READ_TIMEOUT, retries=1) as fresh:
                info = fresh.userinfo()
            if not info.get("loggedIn") or info.get("username") != username:
                raise OperationFailed(f"the new token logs in as {info.get('username')!r}, not {username!r}")
        except (ArgoCDError, OperationFailed) as exc:
            _forget_token(inst, username, new_id)
            raise OperationFailed(f"The new token did not work ({exc}); the old credential is kept.") from exc
        old_id = (inst.token_id or claims(inst.token).get("jti", "")) if inst.token else ""
        exp = claims(token).get("exp")
        inst.token, inst.token_id = token, new_id
        inst.token_expires_at = datetime.fromtimestamp(exp, UTC) if exp else None
        inst.save(update_fields=["token", "token_id", "token_expires_at", "updated_at"])
        update(
            op,
            progress=70,
            message="new token stored and verified; deleting the old one",
            result={"username": username, "new_token_id": new_id, "old_token_id": old_id},
        )
    if not old_id:
        update(op, message="The new token is in place; the old credential had no token id, so nothing to delete.")
        return
    with inst.client(read_timeout=POLL_READ_TIMEOUT, retries=1) as fresh:
        try:
            fresh.delete_account_token(username, old_id)
        except ArgoCDError as exc:
            raise OperationFailed(
                f"The new token is stored and works, but the old token {old_id} could not be deleted "
                f"({exc.message}). Delete it on the accounts page of {inst.name}."
            ) from exc
    update(op, progress=100, message=f"Rotated: token {old_id} deleted, {op.result['new_token_id']} in use.")


def _forget_token(inst: Instance, username: str, token_id: str) -> None:
    """Best effort: don't leave an unused new token behind when it could not be put in place."""
    try:
        with inst.client(read_timeout=POLL_READ_TIMEOUT, retries=0) as current:
            current.delete_account_token(username, token_id)
    except ArgoCDError:
        pass


# ---------------------------------------------------------------- project role tokens
@runner(Operation.Kind.ROTATE_PROJECT_TOKEN)
def rotate_project_token(op: Operation) -> None:
    inst = _instance(op)
    p, project = op.params, op.target
    role, grace = p.get("role", ""), int(p.get("grace_seconds") or 0)
    with inst.client(read_timeout=POLL_READ_TIMEOUT, retries=1) as c:
        if not op.result.get("new_id"):
            update(op, progress=10, message=f"creating a new token for {project}/{role}")
            token = _argo(
                "creating the new token",
                c.create_project_token,
                project,
                role,
                expires_in=int(p.get("expires_in") or 0) or None,
                token_id=f"rotated-{op.pk}",
                description=f"rotated by the portal (operation {op.pk})",
            )
            stash(op.pk, token)
            new = claims(token)
            delete_at = time.time() + grace
            update(
                op,
                progress=30,
                result={
                    "new_id": new.get("jti", ""),
                    "new_iat": new.get("iat"),
                    "token_ready": True,
                    "delete_at": delete_at,
                },
                message=f"New token ready: reveal it once. The old token is deleted in {grace} s.",
            )
        delete_at = float(op.result.get("delete_at") or 0)
        while (left := delete_at - time.time()) > 0:
            time.sleep(min(HEARTBEAT_SECONDS, left))
            done = 1 - max(0.0, delete_at - time.time()) / max(grace, 1)
            update(op, progress=30 + int(60 * done))
        update(op, progress=90, message="grace period over; deleting the old token")
        try:
            c.delete_project_token(project, role, int(p["old_iat"]), token_id=p.get("old_id") or None)
        except errors.NotFound:
            update(op, message="The old token was already gone.")
            return
        except ArgoCDError as exc:
            raise OperationFailed(
                f"The new token works, but the old one could not be deleted ({exc.message}); "
                "delete it on the project page."
            ) from exc
    update(op, progress=100, message=f"Rotated: the old token of {project}/{role} is deleted.")


# ---------------------------------------------------------------- cluster credentials
@runner(Operation.Kind.ROTATE_CLUSTER_AUTH)
def rotate_cluster_auth(op: Operation) -> None:
    inst = _instance(op)
    server = op.params.get("server") or op.target
    with inst.client(read_timeout=POLL_READ_TIMEOUT, retries=1) as c:
        update(op, progress=20, message=f"asking Argo CD to rotate the credentials of {server}")
        _argo("rotate-auth", c.rotate_cluster_auth, server)
        update(op, progress=60, message="checking that the cluster still answers")
        cluster = _argo("reading the cluster after rotation", c.get_cluster, server)
    state = (cluster.get("connectionState") or (cluster.get("info") or {}).get("connectionState") or {}).get("status")
    if state == "Failed":
        raise OperationFailed(f"Argo CD rotated the credentials but cannot connect to {server} any more.")
    update(
        op,
        progress=100,
        result={"connection": state or "Unknown"},
        message=f"Rotated; connection: {state or 'Unknown'}.",
    )


def expiring_instances(within: timedelta) -> list[Instance]:
    soon = datetime.now(UTC) + within
    return list(Instance.objects.filter(enabled=True, token_expires_at__lte=soon).exclude(token=""))
