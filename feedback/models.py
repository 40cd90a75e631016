"""Customer satisfaction: survey templates, invitations and their emails, answers,
and the follow-up cases a poor answer (or a phone call) opens.

Models hold fields, constraints and small properties of their own row; the rules
live in ``feedback.services`` (writes) and ``feedback.selectors`` (reads).

How an invitation travels (see ``feedback.services``)::

    invitation created ─> delivery "invitation" scheduled ─> claimed ─> sent
                           └─ (when sent) delivery "reminder" scheduled ─> claimed ─> sent
                                                                └─> cancelled (answered, expired)

The link in each email carries a random token; only its SHA-256 is stored
(``SurveyToken``). The answer is unique per invitation: it can exist once.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from leads.models import Customer, Deal


class SurveyTemplate(models.Model):
    """The questions of the survey; the default one is used for every new invitation."""

    name = models.CharField(_("name"), max_length=100)
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("New surveys use the default template.")
    )
    ask_free_text = models.BooleanField(_("ask the free-text question"), default=True)
    ask_contact = models.BooleanField(_("ask 'may we contact you?'"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("survey template")
        verbose_name_plural = _("survey templates")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_template"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SurveyTemplateText(models.Model):
    """The texts of a template in one language; English is the fallback for the others."""

    template = models.ForeignKey(
        SurveyTemplate, on_delete=models.CASCADE, related_name="texts", verbose_name=_("template")
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    intro = models.TextField(_("introduction"), blank=True)
    csat_question = models.CharField(
        _("CSAT question (1-5)"), max_length=300, help_text=_("Answered on a scale of 1 to 5.")
    )
    nps_question = models.CharField(
        _("NPS question (0-10)"), max_length=300, help_text=_("Answered on a scale of 0 to 10.")
    )
    free_text_question = models.CharField(_("free-text question"), max_length=300, blank=True)
    contact_question = models.CharField(_("'may we contact you?'"), max_length=300, blank=True)

    class Meta:
        ordering = ["template", "language"]
        verbose_name = _("survey text")
        verbose_name_plural = _("survey texts")
        constraints = [
            models.UniqueConstraint(fields=["template", "language"], name="template_text_language")
        ]

    def __str__(self) -> str:
        return f"{self.template} ({self.language})"


class InvitationReason(models.TextChoices):
    DEAL_WON = "deal_won", _("Deal won")
    ON_DEMAND = "on_demand", _("Sent on request")


class SurveyStatus(models.TextChoices):
    """What the deal page shows; derived from the invitation's timestamps."""

    SCHEDULED = "scheduled", _("Scheduled")
    SENT = "sent", _("Sent")
    REMINDED = "reminded", _("Reminded")
    ANSWERED = "answered", _("Answered")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Not sent")


class SurveyInvitation(models.Model):
    """One customer asked once, about a deal or in general; answered at most once."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="survey_invitations",
        verbose_name=_("customer"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="survey_invitations",
        verbose_name=_("deal"),
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="survey_invitations",
        verbose_name=_("sales rep"),
    )
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template = models.ForeignKey(
        SurveyTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("template")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=InvitationReason.choices)
    # Who the email went to and in which language: set when it is sent.
    email = models.EmailField(_("sent to"), blank=True)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    send_after = models.DateTimeField(_("send after"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    expires_at = models.DateTimeField(_("link expires"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    failed_at = models.DateTimeField(_("given up"), null=True, blank=True)
    failure = models.CharField(_("why not sent"), max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="invitation_customer"),
            models.Index(fields=["deal"], name="invitation_deal"),
            models.Index(fields=["rep", "sent_at"], name="invitation_rep_sent"),
            models.Index(fields=["sent_at"], name="invitation_sent"),
        ]

    def __str__(self) -> str:
        return f"{_('Survey')} #{self.pk} · {self.customer_id}"

    def status_at(self, now: datetime) -> str:
        if self.answered_at is not None:
            return SurveyStatus.ANSWERED
        if self.failed_at is not None and self.sent_at is None:
            return SurveyStatus.FAILED
        if self.expires_at is not None and self.sent_at is not None and self.expires_at <= now:
            return SurveyStatus.EXPIRED
        if self.reminded_at is not None:
            return SurveyStatus.REMINDED
        if self.sent_at is not None:
            return SurveyStatus.SENT
        return SurveyStatus.SCHEDULED

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    def get_status_display(self) -> str:
        return str(SurveyStatus(self.status).label)


class DeliveryKind(models.TextChoices):
    INVITATION = "invitation", _("Invitation")
    REMINDER = "reminder", _("Reminder")


class DeliveryState(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class SurveyDelivery(models.Model):
    """One email of an invitation: the unit that is claimed, sent exactly once, retried.

    Unique per (invitation, kind): there is one invitation email and at most one
    reminder. A worker claims it (scheduled → claimed) before sending; a claim
    left behind by a dead worker is given back by the sweeper.
    """

    invitation = models.ForeignKey(
        SurveyInvitation, on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=DeliveryKind.choices)
    state = models.CharField(
        _("state"), max_length=12, choices=DeliveryState.choices, default=DeliveryState.SCHEDULED
    )
    send_after = models.DateTimeField(_("send after"))
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["send_after", "pk"]
        verbose_name = _("survey email")
        verbose_name_plural = _("survey emails")
        constraints = [
            models.UniqueConstraint(fields=["invitation", "kind"], name="one_delivery_per_kind"),
            models.CheckConstraint(
                condition=~Q(state=DeliveryState.CLAIMED) | Q(claimed_at__isnull=False),
                name="claimed_delivery_has_claim_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["send_after"],
                name="delivery_due",
                condition=Q(state=DeliveryState.SCHEDULED),
            ),
            models.Index(
                fields=["claimed_at"],
                name="delivery_claimed",
                condition=Q(state=DeliveryState.CLAIMED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.invitation_id} ({self.state})"


class SurveyToken(models.Model):
    """A link that was emailed: only the SHA-256 of the random token is kept.

    The reminder (and a resend after a failure) gets a new token; every token of
    an invitation stays valid until the invitation's link expires.
    """

    invitation = models.ForeignKey(
        SurveyInvitation, on_delete=models.CASCADE, related_name="tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=12, choices=DeliveryKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("survey link")
        verbose_name_plural = _("survey links")

    def __str__(self) -> str:
        return f"{self.token_hash[:8]}… ({self.kind})"


class SurveyAnswer(models.Model):
    """A customer's answer; one per invitation (the database refuses a second)."""

    invitation = models.OneToOneField(
        SurveyInvitation, on_delete=models.CASCADE, related_name="answer"
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="survey_answers",
        verbose_name=_("customer"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="survey_answers",
        verbose_name=_("deal"),
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="survey_answers",
        verbose_name=_("sales rep"),
    )
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    csat = models.PositiveSmallIntegerField(
        _("CSAT"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    nps = models.PositiveSmallIntegerField(
        _("NPS score"), validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    free_text = models.TextField(_("comment"), blank=True)
    may_contact = models.BooleanField(_("may we contact you"), null=True, blank=True)
    has_concern = models.BooleanField(_("concern in the comment"), default=False)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    answered_at = models.DateTimeField(_("answered"), default=timezone.now)

    class Meta:
        ordering = ["-answered_at", "-pk"]
        verbose_name = _("survey answer")
        verbose_name_plural = _("survey answers")
        indexes = [
            models.Index(fields=["rep", "answered_at"], name="answer_rep_time"),
            models.Index(fields=["customer", "-answered_at"], name="answer_customer"),
            models.Index(fields=["answered_at"], name="answer_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(csat__gte=1, csat__lte=5), name="answer_csat_1_5"),
            models.CheckConstraint(condition=Q(nps__gte=0, nps__lte=10), name="answer_nps_0_10"),
        ]

    def __str__(self) -> str:
        return f"CSAT {self.csat} · NPS {self.nps}"

    @property
    def nps_group(self) -> str:
        if self.nps >= 9:
            return "promoter"
        if self.nps <= 6:
            return "detractor"
        return "passive"


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed without action")


OPEN_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS)
DONE_CASE_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


class CaseSource(models.TextChoices):
    SURVEY = "survey", _("Survey answer")
    MANUAL = "manual", _("Opened by hand")


class FollowUpCase(models.Model):
    """A customer to get back to, owned by the rep and seen by their manager."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="followup_cases",
        verbose_name=_("customer"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followup_cases",
        verbose_name=_("deal"),
    )
    answer = models.OneToOneField(
        SurveyAnswer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="case",
        verbose_name=_("survey answer"),
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="followup_cases",
        verbose_name=_("sales rep"),
    )
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(_("source"), max_length=10, choices=CaseSource.choices)
    summary = models.CharField(_("summary"), max_length=300)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=CaseStatus.choices, default=CaseStatus.OPEN
    )
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("opened by"),
    )
    deadline = models.DateTimeField(_("deadline"))
    resolved_at = models.DateTimeField(_("resolved or closed"), null=True, blank=True)
    resolution_note = models.TextField(_("resolution"), blank=True)
    close_reason = models.TextField(_("reason for closing"), blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["deadline", "pk"]
        verbose_name = _("follow-up case")
        verbose_name_plural = _("follow-up cases")
        indexes = [
            models.Index(fields=["rep", "status", "deadline"], name="case_rep_status"),
            models.Index(fields=["status", "deadline"], name="case_status_deadline"),
            models.Index(fields=["customer", "-opened_at"], name="case_customer"),
            models.Index(fields=["resolved_at"], name="case_resolved"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=CaseStatus.RESOLVED)
                | (~Q(resolution_note="") & Q(resolved_at__isnull=False)),
                name="case_resolved_has_note",
            ),
            models.CheckConstraint(
                condition=~Q(status=CaseStatus.CLOSED)
                | (~Q(close_reason="") & Q(resolved_at__isnull=False)),
                name="case_closed_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.summary

    def is_overdue_at(self, now: datetime) -> bool:
        return self.status in OPEN_CASE_STATUSES and self.deadline < now

    @property
    def is_overdue(self) -> bool:
        return self.is_overdue_at(timezone.now())

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CASE_STATUSES


class CaseEvent(models.Model):
    """One change of a case: who, when, from which status to which, and the note."""

    case = models.ForeignKey(FollowUpCase, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=CaseStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=CaseStatus.choices)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["case", "created_at"], name="caseevent_case_time")]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status}"
