from celery import shared_task


@shared_task(ignore_result=False)
def ping() -> str:
    """A trivial task so health checks and tests can prove a worker answers."""
    return "pong"
