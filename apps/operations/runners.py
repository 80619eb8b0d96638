"""What each kind of operation does in the worker: a registry of runners, and the Argo CD ones.

A runner gets the claimed, RUNNING Operation. It reports progress with `update(op, ...)` (which also
beats the heartbeat the reaper watches), returns normally on success, and raises `OperationFailed`
(or any exception, whose message is shown) on failure. Other apps register theirs with
`@runner(Operation.Kind.X)` in a module their AppConfig.ready() imports.

The Argo CD runners re-derive everything from `status.operationState`, so a re-run after a dead
worker follows the operation Argo CD already has instead of starting a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.argocd import errors

from .models import Operation
from .progress import with_waves

POLL_SECONDS = 0.5
LOST_ANSWER_CHECK_SECONDS = 3.0  # after a lost answer, reads show no sign of the request this long ⇒ send it again
SEND_ATTEMPTS = 3  # requests that start something, at most, when their answers are lost
NOT_SHOWN_SECONDS = 20.0  # an accepted sync that Argo CD's reads never show ⇒ the operation fails
POLL_READ_TIMEOUT = 10.0  # below the reaper's staleness threshold, so a hung call never looks like a dead worker
FINAL_PHASES = ("Succeeded", "Failed", "Error")
TERMINATED_MESSAGE = "Operation terminated"
INFO_USER, INFO_AUDIT, INFO_OPERATION = "portal-user", "portal-audit-event", "portal-operation"

Runner = Callable[[Operation], None]
RUNNERS: dict[str, Runner] = {}


class OperationFailed(Exception):
    """The operation ended without success; the message is shown to people and audited."""


class OperationCancelled(OperationFailed):
    """Argo CD terminated the operation (somebody pressed terminate)."""


class Lost(Exception):
    """Another worker took this operation over (the reaper thought we were dead): stop quietly."""


class Detached(Exception):
    """The operation goes on without a worker (a bulk sync's children end it): leave it running."""


def runner(kind: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        RUNNERS[kind] = fn
        return fn

    return register


def update(op: Operation, **fields: Any) -> None:
    """Save progress fields and the heartbeat, only while this attempt still owns the operation."""
    fields["heartbeat_at"] = timezone.now()
    changed = Operation.objects.filter(pk=op.pk, state=Operation.State.RUNNING, attempts=op.attempts).update(**fields)
    if not changed:
        raise Lost(f"operation {op.pk} attempt {op.attempts} was taken over")
    for key, value in fields.items():
        setattr(op, key, value)


# ---------------------------------------------------------------- Argo CD operations


def _client(op: Operation):
    if op.instance is None or not op.instance.enabled:
        raise OperationFailed(f"Instance {op.instance_name or '?'} is not registered or is disabled.")
    return op.instance.client(read_timeout=POLL_READ_TIMEOUT, retries=1)


def _scope(op: Operation) -> dict[str, Any]:
    """Pin the app to the project permission was checked against: if it has moved since, Argo CD refuses."""
    scope: dict[str, Any] = {}
    if op.params.get("appNamespace"):
        scope["app_namespace"] = op.params["appNamespace"]
    if op.project:
        scope["project"] = op.project
    return scope


def _get_app(op: Operation, client) -> dict:
    # With the project Argo CD answers a missing app with NotFound rather than PermissionDenied.
    return client.get_application(op.target, **_scope(op))


def _unavailable(op: Operation, exc: errors.ArgoCDError) -> OperationFailed:
    return OperationFailed(f"{op.instance_name} is unavailable: {exc.detail}")


def unreachable_grace() -> float:
    return float(getattr(settings, "OPERATION_UNREACHABLE_GRACE", 300))


class Unreachable:
    """Argo CD not answering, in a row, while an operation's result is pending.

    Unreachable means "result unknown, still checking": Argo CD goes on without us, so the operation keeps
    checking until OPERATION_UNREACHABLE_GRACE seconds have passed without an answer, and only then ends,
    saying that its result is unknown (never that Argo CD is still running it).
    """

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.since: float | None = None
        self.at = ""

    def answered(self) -> None:
        self.since = None

    def still_checking(self, exc: errors.ArgoCDError, what: str = "the result") -> None:
        """Show the outage on the operation, or raise OperationFailed once it has lasted longer than the grace."""
        if self.since is None:
            self.since, self.at = time.monotonic(), f"{timezone.now():%H:%M:%S} UTC"
        grace = unreachable_grace()
        name = self.op.instance_name
        if time.monotonic() - self.since > grace:
            update(self.op, argocd_phase="Unknown", message=f"Stopped checking: {name} unreachable since {self.at}.")
            raise OperationFailed(
                f"Result unknown: {name} has been unreachable since {self.at} ({exc.detail}) and did not answer "
                f"within {grace:g} s, so {what} could not be read. Argo CD may still have finished the operation: "
                "see the application's history and events."
            )
        update(
            self.op,
            message=f"Argo CD ({name}) unreachable since {self.at} ({exc.detail}): {what} is unknown, still checking.",
        )


def _call(op: Operation, fn: Callable[[], Any]) -> Any:
    """One request that starts something; Argo CD's refusal becomes the operation's error."""
    try:
        return fn()
    except errors.Unavailable as exc:
        raise _unavailable(op, exc) from exc
    except errors.ArgoCDError as exc:
        raise OperationFailed(exc.message) from exc


def _first_read(op: Operation, client) -> dict:
    """The app before anything is sent.

    A first attempt has sent nothing yet, so an unreachable Argo CD fails it at once; a re-run (its worker
    died) may have a sync of ours running there, so it keeps checking like `follow`.
    """
    if op.attempts <= 1:
        return _call(op, lambda: _get_app(op, client))
    outage = Unreachable(op)
    while True:
        try:
            return _get_app(op, client)
        except (errors.Unavailable, errors.BadResponse) as exc:
            outage.still_checking(exc)
            time.sleep(POLL_SECONDS)
        except errors.ArgoCDError as exc:
            raise OperationFailed(exc.message) from exc


def _infos(op: Operation) -> list[dict[str, str]]:
    from .services import started_event

    event = started_event(op)
    user = op.requested_by.get_username() if op.requested_by else ""
    return [
        {"name": INFO_USER, "value": user},
        {"name": INFO_AUDIT, "value": str(event.pk if event else "")},
        {"name": INFO_OPERATION, "value": str(op.pk)},
    ]


def is_ours(operation: dict | None, op: Operation) -> bool:
    """Whether an Argo CD `operation` carries our `portal-operation` info."""
    infos = (operation or {}).get("info") or []
    return any(i.get("name") == INFO_OPERATION and i.get("value") == str(op.pk) for i in infos)


def _ours_in(app: dict, op: Operation) -> bool:
    state = (app.get("status") or {}).get("operationState") or {}
    return is_ours(app.get("operation"), op) or is_ours(state.get("operation"), op)


def _total_resources(app: dict, op: Operation) -> int:
    wanted = op.params.get("resources") or []
    if wanted:
        return len(wanted)
    return len((app.get("status") or {}).get("resources") or [])


def _resource_rows(state: dict) -> list[dict]:
    rows = ((state.get("syncResult") or {}).get("resources")) or []
    keep = ("group", "kind", "namespace", "name", "status", "message", "hookType", "hookPhase", "syncPhase")
    return [{k: r.get(k, "") for k in keep} for r in rows]


def follow(op: Operation, client, *, total: int | None = None, mine: bool = False, before: dict | None = None) -> dict:
    """Poll the application until Argo CD's operation is over; returns the final `operationState`.

    "In progress" is `.operation` being set (not the phase: a failed attempt with retries left keeps
    phase Running). Unreachable is "result unknown, still checking" (see `Unreachable`).

    `mine`: the operation carries our infos, so another one (an auto-sync, somebody's sync started right
    after ours) is never reported as ours. `before` is the operationState from before our request: Argo CD
    answers reads from a cache that may lag a moment behind, so seeing it again means "not shown yet".
    """
    outage = Unreachable(op)
    since = time.monotonic()
    started_at = ""
    while True:
        try:
            app = _get_app(op, client)
        except (errors.Unavailable, errors.BadResponse) as exc:
            outage.still_checking(exc)
            time.sleep(POLL_SECONDS)
            continue
        except errors.ArgoCDError as exc:
            raise OperationFailed(exc.message) from exc
        outage.answered()
        state = (app.get("status") or {}).get("operationState") or {}
        if mine and not _ours_in(app, op) and (app.get("operation") or state != (before or {})):
            return _replaced(op, app, started_at)
        if before is not None and not app.get("operation") and state == before and not _ours_in(app, op):
            if time.monotonic() - since > NOT_SHOWN_SECONDS:
                raise OperationFailed(f"Argo CD still does not show this operation after {NOT_SHOWN_SECONDS:.0f} s.")
            update(op, message="waiting for Argo CD to show the operation")
            time.sleep(POLL_SECONDS)
            continue
        if mine and is_ours(state.get("operation"), op):
            started_at = state.get("startedAt") or started_at
        rows = with_waves(_resource_rows(state), app)
        count = total if total is not None else _total_resources(app, op)
        count = max(count, len(rows))
        progress = min(99, len(rows) * 100 // count) if count else 0
        phase = state.get("phase") or ("Pending" if app.get("operation") else "")
        update(
            op,
            argocd_phase=phase,
            message=state.get("message") or ("waiting for the controller" if app.get("operation") else ""),
            resources=rows,
            progress=progress,
        )
        if not app.get("operation") and state.get("phase") in FINAL_PHASES:
            return state
        time.sleep(POLL_SECONDS)


def _replaced(op: Operation, app: dict, started_at: str) -> dict:
    """Another operation took the app's operation slot before we saw ours end.

    Argo CD keeps only the history of completed full syncs, so ours succeeded if an entry started when it did.
    """
    for entry in reversed((app.get("status") or {}).get("history") or []):
        if started_at and entry.get("deployStartedAt") == started_at:
            note = "succeeded (read from the history: another operation has started since)"
            return {
                "phase": "Succeeded",
                "message": note,
                "syncResult": {"revision": entry.get("revision", "")},
                "startedAt": started_at,
                "finishedAt": entry.get("deployedAt", ""),
            }
    raise OperationFailed(
        "Another operation started on the application before this one's end could be read, and Argo CD's "
        "history has no completed sync from it: see the application's history and events for what happened."
    )


def _send(op: Operation, client, request: Callable[[], Any], started: Callable[[dict], bool], what: str) -> str:
    """Send a request that starts an Argo CD operation; when its answer is lost, send it again only if not started.

    A 502 from an ingress, a timeout or a cut connection may mean the request never reached Argo CD, or that
    it did and only the answer was lost. So the app is read back: `started(app)` says whether it shows the
    operation; only if it does not is the request sent again (at most SEND_ATTEMPTS in all). Argo CD's
    refusal of the first request propagates; after a lost answer, "another operation is already in progress"
    may be our own earlier request, so it is checked the same way. Returns a note for the result, "" when
    the first answer came back.
    """
    lost: errors.ArgoCDError | None = None
    for _ in range(SEND_ATTEMPTS):
        try:
            request()
            if lost is None:
                return ""
            return f"A {what} request got no answer ({lost.detail}) and Argo CD had not started it: sent again."
        except errors.FailedPrecondition as exc:
            if lost is None:
                raise
            if _started_after_lost_answer(op, client, started, lost, what):
                break
            raise OperationFailed(exc.message) from exc
        except (errors.Unavailable, errors.BadResponse) as exc:
            lost = exc
        if _started_after_lost_answer(op, client, started, lost, what):
            break
    else:
        raise OperationFailed(
            f"The {what} request got no answer {SEND_ATTEMPTS} times (last: {lost.detail}) and Argo CD shows no "
            f"{what} from it: nothing was started."
        )
    return f"The {what} request got no answer ({lost.detail}); Argo CD had started it, so it was not sent again."


def _started_after_lost_answer(
    op: Operation, client, started: Callable[[dict], bool], lost: errors.ArgoCDError, what: str
) -> bool:
    """Read the app back until it shows the operation (True) or LOST_ANSWER_CHECK_SECONDS of answers do not.

    Argo CD's reads may lag a moment behind a write, hence a short while of reads rather than one.
    """
    outage = Unreachable(op)
    checking_since: float | None = None
    while True:
        try:
            app = _get_app(op, client)
        except (errors.Unavailable, errors.BadResponse) as exc:
            outage.still_checking(exc, what=f"whether the {what} started")
            time.sleep(POLL_SECONDS)
            continue
        except errors.ArgoCDError as exc:
            raise OperationFailed(exc.message) from exc
        outage.answered()
        if started(app):
            return True
        checking_since = checking_since or time.monotonic()
        if time.monotonic() - checking_since >= LOST_ANSWER_CHECK_SECONDS:
            return False
        update(op, message=f"The {what} request got no answer ({lost.detail}); checking whether Argo CD started it.")
        time.sleep(POLL_SECONDS)


def _rollback_started(before_app: dict, history_id: int) -> Callable[[dict], bool]:
    """Whether an app shows a rollback to `history_id` started since `before_app` was read.

    A rollback request carries no infos, so this is the best Argo CD tells: a new operation (or operation
    state) since, deploying that history entry's revision.
    """
    status = before_app.get("status") or {}
    before = status.get("operationState") or {}
    entry = next((h for h in status.get("history") or [] if h.get("id") == history_id), {})

    def started(app: dict) -> bool:
        state = (app.get("status") or {}).get("operationState") or {}
        if not app.get("operation") and state == before:
            return False
        sync = ((app.get("operation") or state.get("operation") or {}).get("sync")) or {}
        return not entry.get("revision") or sync.get("revision") == entry.get("revision")

    return started


def _conclude(op: Operation, state: dict, note: str = "") -> None:
    """Record Argo CD's final answer; a failed phase fails the operation with Argo CD's own message."""
    sync_result = state.get("syncResult") or {}
    result = {
        "phase": state.get("phase", ""),
        "message": state.get("message", ""),
        "revision": sync_result.get("revision") or "",
        "startedAt": state.get("startedAt", ""),
        "finishedAt": state.get("finishedAt", ""),
    }
    if note:
        result["note"] = note
    update(op, result=result, argocd_phase=result["phase"], message=result["message"])
    if result["phase"] == "Succeeded":
        return
    if result["message"] == TERMINATED_MESSAGE:
        raise OperationCancelled(TERMINATED_MESSAGE)
    raise OperationFailed(result["message"] or f"Argo CD reported phase {result['phase']}")


def recheck(op: Operation, action: str, app: dict) -> None:
    """Decide the request again for its requester just before Argo CD is called.

    Between the submit and now a grant may have been removed or narrowed (or the account disabled): the
    operation then fails with the reason, and the refusal is audited. An operation nobody requested (a
    schedule's) has no user whose grants could have changed.
    """
    from apps.access.decide import Target, decide
    from apps.applications.services import own_revision
    from apps.audit.service import Outcome, record
    from apps.governance.approvals import verify_in_worker

    if op.requested_by is None:
        if op.params.get("approval"):  # an approved plan runs only as its requester's
            raise OperationFailed("Not started: the requester of the approved plan no longer exists.")
        return
    namespace = (app.get("metadata") or {}).get("namespace") or "*"
    target = Target(op.instance, op.project or "*", op.target, own_revision(app), namespace=namespace)
    params = dict(op.params)
    if op.parent_id and "approval" not in params:  # the bulk size limit holds in the worker too
        params["bulk_size"] = Operation.objects.filter(parent_id=op.parent_id).count()
    decision = decide(op.requested_by, action, target, params)
    if decision.allowed:
        verify_in_worker(op, app)  # an approved plan runs only on the spec its approvers saw
        return
    why = f"Refused when it was about to start: {decision.reason}."
    record(None, action=action, outcome=Outcome.DENIED, user=op.requested_by, instance=op.instance_name,
           kind="application", project=op.project, name=op.target, payload=op.params, operation_id=op.pk,
           error=f"refused in the worker by {decision.constraint or 'grant'}: {decision.reason}")  # fmt: skip
    raise OperationFailed(why)


def _sync_strategy(params: dict) -> str | None:
    strategy = params.get("strategy") or ""
    if not strategy:
        return "apply-force" if params.get("force") else None
    if strategy not in ("apply", "hook"):
        raise OperationFailed(f"Unknown sync strategy {strategy!r} (use apply or hook).")
    return f"{strategy}-force" if params.get("force") else strategy


def _check_windows(op: Operation) -> None:
    """A change window may have closed while the operation waited in the queue: fail before asking Argo CD,
    unless the operation carries an override (its reason was given and audited when it was started)."""
    from apps.governance import windows

    if op.override_reason or op.requested_by is None:
        return
    block = windows.check(op.requested_by, op.kind, op.instance_name, op.project, op.target)
    if block is not None:
        raise OperationFailed(f"Not started: {op.target} on {op.instance_name} is {block}.")


@runner(Operation.Kind.SYNC)
def run_sync(op: Operation) -> None:
    """params: revision, prune, dryRun, strategy ("apply"|"hook") + force, resources ([{group, kind, name,
    namespace}] for a partial sync), syncOptions (["CreateNamespace=true", ...]), retryStrategy (Argo CD's dict),
    appNamespace. The portal user, audit event and operation id go to Argo CD as the operation's infos."""
    p = op.params
    with _client(op) as client:
        app = _first_read(op, client)
        before, note = None, ""
        if not _ours_in(app, op):
            _check_windows(op)
            recheck(op, "sync", app)
            before = (app.get("status") or {}).get("operationState") or {}
            strategy, infos = _sync_strategy(p), _infos(op)
            update(op, message="starting sync", argocd_phase="")

            def request() -> Any:
                return client.sync_application(
                    op.target,
                    revision=p.get("revision") or None,
                    prune=bool(p.get("prune")),
                    dry_run=bool(p.get("dryRun")),
                    strategy=strategy,
                    resources=p.get("resources") or None,
                    sync_options=p.get("syncOptions") or None,
                    retry=p.get("retryStrategy") or None,
                    infos=infos,
                    **_scope(op),
                )

            # The sync carries our infos, so reading the app back tells whether a lost answer's request started.
            note = _call(op, lambda: _send(op, client, request, lambda a: _ours_in(a, op), "sync"))
        else:
            update(op, message="re-attached to the running Argo CD operation")
        _conclude(op, follow(op, client, mine=True, before=before), note)


@runner(Operation.Kind.ROLLBACK)
def run_rollback(op: Operation) -> None:
    """params: id (status.history[].id), prune, dryRun, appNamespace."""
    p = op.params
    try:
        history_id = int(p.get("id"))
    except (TypeError, ValueError):
        raise OperationFailed(f"A rollback needs the number of a history entry, not {p.get('id')!r}.") from None
    with _client(op) as client:
        # Rollback takes no infos, so a re-run knows its request went through only from our own mark.
        before, note = None, ""
        if not op.result.get("submitted"):
            _check_windows(op)
            app = _call(op, lambda: _get_app(op, client))
            recheck(op, "rollback", app)
            before = (app.get("status") or {}).get("operationState") or {}

            def request() -> Any:
                return client.rollback_application(
                    op.target, history_id, dry_run=bool(p.get("dryRun")), prune=bool(p.get("prune")), **_scope(op)
                )

            try:
                note = _send(op, client, request, _rollback_started(app, history_id), "rollback")
            except errors.FailedPrecondition as exc:
                if op.attempts <= 1:  # a re-run may find its own rollback still going: follow it then
                    raise OperationFailed(exc.message) from exc
            except errors.Unavailable as exc:
                raise _unavailable(op, exc) from exc
            except errors.ArgoCDError as exc:
                raise OperationFailed(exc.message) from exc
            update(op, result={"submitted": True, "note": note}, message=f"rolling back to history id {history_id}")
        _conclude(op, follow(op, client, before=before), note or op.result.get("note", ""))


@runner(Operation.Kind.TERMINATE)
def run_terminate(op: Operation) -> None:
    with _client(op) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.terminate_operation(op.target, **_scope(op))
                break
            except errors.InvalidArgument as exc:
                # Right after a sync Argo CD refuses until the controller has written operationState.
                app = _call(op, lambda: _get_app(op, client))
                if not app.get("operation"):
                    if op.attempts > 1:  # re-run after a dead worker: our terminate already ended it
                        break
                    raise OperationFailed(exc.message) from exc
                if time.monotonic() > deadline:
                    raise OperationFailed(exc.message) from exc
                update(op, message="waiting for the operation to start before terminating it")
                time.sleep(POLL_SECONDS)
            except errors.Unavailable as exc:
                raise _unavailable(op, exc) from exc
            except errors.ArgoCDError as exc:
                raise OperationFailed(exc.message) from exc
        update(op, message="terminating")
        state = follow(op, client)
    phase, text = state.get("phase", ""), state.get("message", "")
    result = {"phase": phase, "message": text, "finishedAt": state.get("finishedAt", "")}
    update(op, result=result, argocd_phase=result["phase"], message=f"Argo CD operation ended: {result['message']}")


# ---------------------------------------------------------------- bulk sync

RESEND_SECONDS = 3.0  # a released child not claimed by then is sent again (its message may be lost)


def bulk_counts(parent: Operation) -> dict[str, int]:
    counts = {s.value: 0 for s in Operation.State}
    for state in parent.children.values_list("state", flat=True):
        counts[state] += 1
    counts["total"] = sum(counts.values())
    return counts


def release_children(parent_id: int, instance_id: int) -> list[int]:
    """Send as many queued children of one instance as there are free slots (their claim re-checks the limit)."""
    from .services import DEFAULT_BULK_LIMIT
    from .tasks import dispatch

    params = Operation.objects.filter(pk=parent_id).values_list("params", flat=True).first() or {}
    siblings = Operation.objects.filter(parent_id=parent_id, instance_id=instance_id)
    free = int(params.get("limit") or DEFAULT_BULK_LIMIT) - siblings.filter(state=Operation.State.RUNNING).count()
    queued = siblings.filter(state=Operation.State.QUEUED).order_by("id")
    ids = list(queued.values_list("id", flat=True)[: max(free, 0)])
    for child_id in ids:
        dispatch(child_id)
    return ids


def _release_free_slots(op: Operation, limit: int) -> None:
    # Touching the waiting children tells the reaper they are held back on purpose, not lost.
    op.children.filter(state=Operation.State.QUEUED).update(heartbeat_at=timezone.now())
    per_instance: dict[int, dict[str, list[int]]] = {}
    for child_id, instance_id, state in op.children.order_by("id").values_list("id", "instance_id", "state"):
        per_instance.setdefault(instance_id, {"running": [], "queued": []})
        if state in ("running", "queued"):
            per_instance[instance_id][state].append(child_id)
    from .tasks import dispatch

    for rows in per_instance.values():
        free = limit - len(rows["running"])
        for child_id in rows["queued"][: max(free, 0)]:
            dispatch(child_id)


@runner(Operation.Kind.BULK_SYNC)
def run_bulk_sync(op: Operation) -> None:
    """Release the first children; from then on each finishing child releases the next and settles the parent.

    No worker waits for a bulk sync to end, so one of any size outlives a task's time limit.
    """
    from .services import DEFAULT_BULK_LIMIT

    _release_free_slots(op, max(1, int(op.params.get("limit") or DEFAULT_BULK_LIMIT)))
    settle_bulk_parent(op.pk)
    raise Detached


def settle_bulk_parent(parent_id: int) -> None:
    """Sum up a bulk sync's children; when the last has ended, end the parent (failures stop nothing)."""
    from .services import finish

    with transaction.atomic():
        parent = Operation.objects.select_for_update().filter(pk=parent_id, state=Operation.State.RUNNING).first()
        if parent is None:
            return
        c = bulk_counts(parent)
        done = c["succeeded"] + c["failed"] + c["cancelled"]
        summary = (
            f"{done}/{c['total']} done: {c['succeeded']} succeeded, {c['failed'] + c['cancelled']} failed, "
            f"{c['running']} running, {c['queued']} queued"
        )
        progress = done * 100 // c["total"] if c["total"] else 100
        if done < c["total"]:
            Operation.objects.filter(pk=parent.pk).update(
                progress=progress, message=summary, result=c, heartbeat_at=timezone.now()
            )
            return
        if c["succeeded"] == c["total"]:
            finish(parent, Operation.State.SUCCEEDED, message=summary, result=c)
            return
        failed = parent.children.exclude(state=Operation.State.SUCCEEDED).values_list("instance_name", "target")[:20]
        names = ", ".join(f"{i}/{t}" for i, t in failed)
        error = f"{c['total'] - c['succeeded']} of {c['total']} syncs failed: {names}"
        finish(parent, Operation.State.FAILED, error=error, message=summary, result=c, progress=progress)
