"""Background work of the accounts app. Tasks are thin: they call a service."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from accounts.services import housekeeping_run

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def send_email(*, subject: str, body: str, to: list[str], html_body: str | None = None) -> None:
    """Send one already-rendered email (password resets and other account mail).

    Rendered by the caller so the task carries only JSON. A retry after an SMTP
    failure sends it again, which is right: the failed attempt sent nothing.
    """
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    if html_body:
        message.attach_alternative(html_body, "text/html")
    message.send()


@shared_task
def housekeeping() -> dict[str, int]:
    # The cut-off is computed here: a retry a minute later deletes the same rows.
    deleted = housekeeping_run(now=timezone.now())
    logger.info("housekeeping deleted %s", deleted)
    return deleted
