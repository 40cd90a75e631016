"""Reminders (what a rep must not forget) and the daily digest emails.

A reminder is found by a rule (``reminders.rules``) and stored once under its
unique key (kind, subject, recipient, due day): running the rules twice
creates nothing new. Its email travels like a survey email::

    email_state: pending ─> claimed ─> sent
                              └─> failed (attempts used up)
    skipped: the user wants no immediate email

Postgres is the source of truth: a worker claims the row with a conditional
UPDATE before it sends; a claim left by a dead worker is given back by the
sweeper. The user's own handling of the reminder (open, done, snoozed,
dismissed) is a separate field.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReminderKind(models.TextChoices):
    CHECK_IN = "check_in", _("Check in with the customer after a won deal")
    LEAD_NO_CONTACT = "lead_no_contact", _("Lead without contact")
    ESTIMATE_EXPIRING = "estimate_expiring", _("Estimate about to expire")
    ACTIVITY_OVERDUE = "activity_overdue", _("Overdue to-do")
    GOAL_BEHIND = "goal_behind", _("Goal behind pace")
    CASE_OVERDUE = "case_overdue", _("Follow-up case past its deadline")
    SQL_NOT_CONTACTED = "sql_not_contacted", _("SQL lead not contacted in time")


class ReminderStatus(models.TextChoices):
    OPEN = "open", _("Open")
    SNOOZED = "snoozed", _("Snoozed")
    DONE = "done", _("Done")
    DISMISSED = "dismissed", _("Dismissed")


class EmailState(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Not emailed")


class Reminder(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=ReminderKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="reminders",
        verbose_name=_("for"),
    )
    # The subject: its id (part of the unique key) and, for links and scoping,
    # the row itself in the one matching column below.
    object_id = models.BigIntegerField(_("subject id"))
    due_on = models.DateField(_("due"))
    title = models.CharField(_("title"), max_length=300)
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    customer = models.ForeignKey(
        "leads.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    deal = models.ForeignKey(
        "leads.Deal", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    estimate = models.ForeignKey(
        "leads.Estimate", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    activity = models.ForeignKey(
        "leads.Activity", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    goal = models.ForeignKey(
        "goals.Goal", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    case = models.ForeignKey(
        "feedback.FollowUpCase", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.OPEN
    )
    snoozed_until = models.DateField(_("snoozed until"), null=True, blank=True)
    handled_at = models.DateTimeField(_("handled"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # The immediate email.
    email_state = models.CharField(
        _("email"), max_length=10, choices=EmailState.choices, default=EmailState.PENDING
    )
    send_after = models.DateTimeField(_("send after"), default=timezone.now)
    # When a send task was last put on the queue: the every-minute dispatcher
    # queues a pending email again only after REMINDER_CLAIM_TIMEOUT (the queue
    # was lost), so a backlog is not queued once a minute.
    enqueued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["due_on", "pk"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id", "user", "due_on"], name="reminder_unique_key"
            ),
            models.CheckConstraint(
                condition=~Q(email_state=EmailState.CLAIMED) | Q(claimed_at__isnull=False),
                name="claimed_reminder_has_claim_time",
            ),
        ]
        indexes = [
            # Someone's open (and snoozed) reminders, soonest due first: the panel reads
            # ten in index order and counts the rest from the index alone, however many
            # a rule left open.
            models.Index(
                fields=["user", "due_on", "id"],
                include=["status", "snoozed_until"],
                name="reminder_open_user_due",
                condition=Q(status=ReminderStatus.OPEN) | Q(status=ReminderStatus.SNOOZED),
            ),
            models.Index(
                fields=["send_after"],
                name="reminder_email_due",
                condition=Q(email_state=EmailState.PENDING),
            ),
            models.Index(
                fields=["claimed_at"],
                name="reminder_email_claimed",
                condition=Q(email_state=EmailState.CLAIMED),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Digest(models.Model):
    """The one daily digest email of a user for one day of their own time zone."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="digests",
        verbose_name=_("for"),
    )
    local_date = models.DateField(_("day"))
    state = models.CharField(
        _("state"), max_length=10, choices=EmailState.choices, default=EmailState.PENDING
    )
    send_after = models.DateTimeField(_("send after"))
    enqueued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    item_count = models.PositiveIntegerField(_("items"), default=0)

    class Meta:
        ordering = ["-local_date", "user"]
        verbose_name = _("daily digest")
        verbose_name_plural = _("daily digests")
        constraints = [
            models.UniqueConstraint(fields=["user", "local_date"], name="one_digest_per_user_day"),
            models.CheckConstraint(
                condition=~Q(state=EmailState.CLAIMED) | Q(claimed_at__isnull=False),
                name="claimed_digest_has_claim_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["send_after"],
                name="digest_due",
                condition=Q(state=EmailState.PENDING),
            ),
            models.Index(
                fields=["claimed_at"],
                name="digest_claimed",
                condition=Q(state=EmailState.CLAIMED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.local_date:%Y-%m-%d}"
