"""Celery tasks: map an audit event to deliveries, then deliver each with retries and backoff."""

from __future__ import annotations

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from apps.audit.service import Outcome, record

from .models import Delivery
from .services import DESTINATION_KIND, DeliveryError, DeliveryRefused, plan, send

MAX_RETRIES = 5


@shared_task(ignore_result=True, time_limit=60)
def dispatch_event(event_id: int) -> int:
    ids = plan(event_id)
    for pk in ids:
        deliver.delay(pk)
    return len(ids)


@shared_task(
    bind=True,
    ignore_result=True,
    time_limit=60,
    autoretry_for=(DeliveryError,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=False,
    max_retries=MAX_RETRIES,
)
def deliver(self, delivery_id: int) -> None:
    delivery = Delivery.objects.select_related("destination").filter(pk=delivery_id).first()
    if delivery is None or delivery.status == Delivery.Status.DELIVERED:
        return
    Delivery.objects.filter(pk=delivery_id).update(attempts=F("attempts") + 1)
    try:
        code = send(delivery)
    except DeliveryError as exc:
        last = exc.permanent or self.request.retries >= MAX_RETRIES
        status = Delivery.Status.FAILED if last else Delivery.Status.RETRYING
        Delivery.objects.filter(pk=delivery_id).update(status=status, last_error=str(exc)[:2000])
        if isinstance(exc, DeliveryRefused):
            _audit_refusal(delivery, str(exc))
        if exc.permanent:
            return
        raise
    Delivery.objects.filter(pk=delivery_id).update(
        status=Delivery.Status.DELIVERED, last_status_code=code, delivered_at=timezone.now()
    )


def _audit_refusal(delivery: Delivery, error: str) -> None:
    dest = delivery.destination
    record(None, action="deliver", outcome=Outcome.DENIED, actor="portal", kind=DESTINATION_KIND, name=dest.name,
           team=dest.team.slug if dest.team_id else "", error=error,
           payload={"delivery": delivery.pk, "event": delivery.event_id, "url": dest.url})  # fmt: skip
