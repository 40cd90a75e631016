"""Background work of the pipeline. Tasks are thin: they take ids and call services."""

from __future__ import annotations

import smtplib
from datetime import date, datetime

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from leads.models import Lead
from leads.scoring import leads_rescore_open, win_model_recompute
from leads.services import estimates_expire_due, leads_refresh_temperatures


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def notify_lead_assigned(*, lead_id: int, owner_id: int) -> bool:
    """Email a rep that a lead is theirs, in their language.

    Sent only while the lead is still theirs: a lead reassigned before the
    worker got to it sends nothing stale. A retry after an SMTP failure sends
    again, which is right: the failed attempt sent nothing.
    """
    lead = (
        Lead.objects.filter(pk=lead_id, owner_id=owner_id)
        .select_related("owner", "territory")
        .first()
    )
    if lead is None or not lead.owner.is_active:
        return False
    owner: User = lead.owner
    with translation.override(owner.language):
        context = {
            "lead": lead,
            "owner": owner,
            "url": settings.SITE_URL.rstrip("/") + reverse("leads:detail", args=[lead.pk]),
        }
        subject = render_to_string("emails/lead_assigned_subject.txt", context).strip()
        body = render_to_string("emails/lead_assigned.txt", context)
        html = render_to_string("emails/lead_assigned.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[owner.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True


@shared_task
def recompute_win_model(at: str | None = None) -> int:
    """Nightly: learn the win probabilities from the decided leads (see leads.scoring).

    ``at`` (ISO datetime) pins the moment for a rerun; by default the time the task
    starts. Idempotent: a rerun stores the same counts and prunes older models.
    """
    now = datetime.fromisoformat(at) if at else timezone.now()
    return win_model_recompute(now=now).pk


# A million open leads take a few minutes: more than the default task limit.
@shared_task(soft_time_limit=30 * 60, time_limit=35 * 60)
def rescore_open_leads(at: str | None = None) -> int:
    """Nightly, after recompute_win_model: rescore the open leads; returns how many changed.

    Idempotent: a rerun changes nothing more and records no further SCORE events.
    """
    now = datetime.fromisoformat(at) if at else timezone.now()
    return leads_rescore_open(now=now)


# Longer than the default limits: a large import that routes many leads one by
# one can run for minutes (the visibility timeout, 1 hour, stays above this).
@shared_task(soft_time_limit=25 * 60, time_limit=30 * 60)
def import_run(*, job_id: int) -> str:
    """Advance a CSV import: check its rows (job "validating") or import them
    ("importing"); see leads.importing. Safe to repeat: a job already past the step
    is left alone, and the import locks the job and runs in one transaction."""
    from leads.importing import import_job_advance

    return import_job_advance(job_id=job_id)


@shared_task
def expire_estimates(day: str | None = None) -> int:
    """Sent estimates past their validity become expired (``day`` ISO, default today).

    Set-based and safe to repeat: a second run finds nothing left to expire.
    """
    today = date.fromisoformat(day) if day else timezone.localdate()
    return estimates_expire_due(today=today)


@shared_task
def refresh_temperatures(day: str | None = None) -> int:
    """Nightly: open leads warm up as their buying timeframe draws near (``day`` ISO).

    Safe to repeat: a second run the same day changes nothing.
    """
    today = date.fromisoformat(day) if day else timezone.localdate()
    return leads_refresh_temperatures(today=today)
