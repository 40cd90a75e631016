"""Background work of the pipeline. Tasks are thin: they take ids and call services."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from leads.models import Lead


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
