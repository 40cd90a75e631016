"""Background work of the feedback app. Tasks are thin: they take ids or ISO datetimes
and call services; exactly-once sending is the services' business (claims in the
database), so a task that runs twice sends nothing twice.

Schedules (salesperf/celery.py): ``dispatch_surveys`` every minute,
``sweep_survey_claims`` every five minutes.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from feedback import services
from feedback.models import FollowUpCase

logger = logging.getLogger(__name__)


def _moment(at: str | None) -> datetime:
    return datetime.fromisoformat(at) if at else timezone.now()


@shared_task
def dispatch_surveys(at: str | None = None) -> dict[str, int]:
    """Every minute: send the survey invitations and reminders due at ``at`` (default: now).

    Claims in small batches with SKIP LOCKED, so two runs at once share the work;
    one email's failure is recorded on its row and the batch goes on.
    """
    outcomes = services.deliveries_dispatch(now=_moment(at))
    if outcomes:
        logger.info("Survey emails: %s", dict(outcomes))
    return dict(outcomes)


@shared_task
def sweep_survey_claims(at: str | None = None) -> int:
    """Every five minutes: give back the emails claimed by a worker that died."""
    return services.deliveries_sweep(now=_moment(at))


@shared_task
def send_survey_email(*, delivery_id: int) -> str:
    """Send one survey email now (an on-demand survey) if nobody has sent or claimed it.

    If this task is lost or runs late, the dispatcher sends the email instead;
    if both run, the claim lets exactly one of them send it.
    """
    return services.delivery_send_now(delivery_id=delivery_id, now=timezone.now())


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def notify_case_opened(*, case_id: int) -> bool:
    """Email the rep (their team's managers in copy) that a follow-up case was opened.

    Claimed before sending (``notified_at``), released when sending fails so the
    retry can claim it again: sent once.
    """
    case = (
        FollowUpCase.objects.filter(pk=case_id, notified_at__isnull=True)
        .select_related("rep", "customer", "answer")
        .first()
    )
    if case is None or not case.rep.is_active:
        return False
    if not services.case_notification_claim(case_id=case_id, now=timezone.now()):
        return False
    rep: User = case.rep
    managers = list(
        User.objects.filter(managed_teams__members=rep, is_active=True)
        .exclude(pk=rep.pk)
        .values_list("email", flat=True)
        .distinct()
    )
    try:
        with translation.override(rep.language):
            context = {
                "case": case,
                "rep": rep,
                "url": settings.SITE_URL.rstrip("/")
                + reverse("feedback:case_detail", args=[case.pk]),
            }
            subject = render_to_string("emails/case_opened_subject.txt", context).strip()
            body = render_to_string("emails/case_opened.txt", context)
            html = render_to_string("emails/case_opened.html", context)
        message = EmailMultiAlternatives(subject=subject, body=body, to=[rep.email], cc=managers)
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception:
        services.case_notification_release(case_id=case_id)
        raise
    return True
