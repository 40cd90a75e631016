"""The sales pipeline: customers, leads and their history, estimates, deals, activities.

Models hold fields, constraints and small properties of their own row; the
rules (stage machine, scoring, routing, imports) live in services and their
own modules. Money is Decimal in the installation's base currency.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import ProductLine, Team, Territory

MONEY = {"max_digits": 14, "decimal_places": 2}


def normalise_phone(phone: str) -> str:
    """Digits only, without a leading international 00: what duplicate detection compares."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[2:] if digits.startswith("00") else digits


class LeadSource(models.TextChoices):
    REFERRAL = "referral", _("Referral from a customer")
    EXISTING_CUSTOMER = "existing_customer", _("Existing customer")
    PURCHASED_LIST = "purchased_list", _("Purchased list")
    EMAIL_CAMPAIGN = "email_campaign", _("Email campaign")
    INBOUND_CONTENT = "inbound_content", _("Inbound content (blog, video…)")
    SOCIAL_MEDIA = "social_media", _("Social media / LinkedIn")
    WEBINAR = "webinar", _("Webinar")
    TRADE_SHOW = "trade_show", _("Trade show or event")
    NETWORKING = "networking", _("Networking / chamber of commerce")
    LOCAL_ADVERTISING = "local_advertising", _("Local advertising")
    LIVE_CHAT = "live_chat", _("Website live chat")
    RECYCLED = "recycled", _("Recycled lost opportunity")
    OTHER = "other", _("Other")


class Stage(models.TextChoices):
    SUSPECT = "suspect", _("Suspect")
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")
    MQL = "mql", _("MQL")
    SQL = "sql", _("SQL")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    DISQUALIFIED = "disqualified", _("Disqualified")


# Stages marketing works on (DESIGN.md: marketing sees these and unassigned leads).
MARKETING_STAGES = (Stage.SUSPECT, Stage.COLD, Stage.WARM, Stage.HOT, Stage.MQL)
TEMPERATURE_STAGES = (Stage.COLD, Stage.WARM, Stage.HOT)
OPEN_STAGES = (Stage.SUSPECT, Stage.COLD, Stage.WARM, Stage.HOT, Stage.MQL, Stage.SQL)
CLOSED_STAGES = (Stage.WON, Stage.LOST, Stage.DISQUALIFIED)


class Temperature(models.TextChoices):
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")


class LostReason(models.TextChoices):
    PRICE = "price", _("Price not competitive")
    PRODUCT_FIT = "product_fit", _("Product fit")
    DELIVERY_DELAY = "delivery_delay", _("Delivery or manufacturing delay")
    CUSTOMER_SERVICE = "customer_service", _("Customer service problem")
    REP_PERFORMANCE = "rep_performance", _("Rep performance")
    COMPETITOR = "competitor", _("Competitor chosen")
    NO_BUDGET = "no_budget", _("No budget / no decision")
    OTHER = "other", _("Other")


class CustomerKind(models.TextChoices):
    COMPANY = "company", _("Company")
    # Its own context: "Person" elsewhere means personal details, not a private customer.
    PERSON = "person", pgettext_lazy("customer kind", "Person")


class Customer(models.Model):
    kind = models.CharField(
        _("kind"), max_length=10, choices=CustomerKind.choices, default=CustomerKind.COMPANY
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    phone_normalised = models.CharField(max_length=40, blank=True, editable=False)
    address = models.TextField(_("address"), blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default="en",
        help_text=_("Surveys and customer emails are sent in this language."),
    )
    territory = models.ForeignKey(
        Territory, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("territory")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
        verbose_name=_("owner"),
    )
    notes = models.TextField(_("notes"), blank=True)
    extra = models.JSONField(
        _("extra fields"), default=dict, blank=True, help_text=_("Any other facts, as name: value.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            models.Index(Lower("email"), name="customer_email_ci"),
            models.Index(fields=["phone_normalised"], name="customer_phone_norm"),
            models.Index(Lower("name"), name="customer_name_ci"),
            models.Index(fields=["owner", "name"], name="customer_owner_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("customer")
    )
    name = models.CharField(_("name"), max_length=200)
    title = models.CharField(_("role or title"), max_length=100, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True
    )
    is_primary = models.BooleanField(_("primary contact"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    # Who: a known customer, or the contact data the lead came with.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("customer"),
    )
    contact_name = models.CharField(_("contact name"), max_length=200, blank=True)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    phone_normalised = models.CharField(max_length=40, blank=True, editable=False)

    source = models.CharField(_("source"), max_length=30, choices=LeadSource.choices)
    product_lines = models.ManyToManyField(
        ProductLine, blank=True, related_name="leads", verbose_name=_("product lines")
    )
    territory = models.ForeignKey(
        Territory, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("territory")
    )
    timeframe = models.DateField(
        _("buying timeframe"),
        null=True,
        blank=True,
        help_text=_("When the prospect expects to decide; empty: no timeframe."),
    )
    estimated_value = models.DecimalField(
        _("estimated value"), **MONEY, null=True, blank=True, validators=[MinValueValidator(0)]
    )

    # Indexed by the (owner, …) indexes below; a plain FK index would be one
    # more index to update on every insert of a bulk import.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("owner"),
        db_index=False,
    )
    # The team a lead was handed to (by marketing or routing) before it has an owner.
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("team"),
        db_index=False,  # the (team, stage) index serves it
    )
    stage = models.CharField(
        _("stage"), max_length=20, choices=Stage.choices, default=Stage.SUSPECT
    )
    temperature = models.CharField(
        _("temperature"), max_length=10, choices=Temperature.choices, blank=True
    )
    temperature_overridden = models.BooleanField(_("temperature set by hand"), default=False)
    lost_reason = models.CharField(
        _("lost / disqualified reason"), max_length=30, choices=LostReason.choices, blank=True
    )

    score = models.PositiveSmallIntegerField(
        _("score"), default=0, validators=[MaxValueValidator(100)]
    )
    score_breakdown = models.JSONField(_("score breakdown"), default=list, blank=True)
    win_probability = models.DecimalField(
        _("learned win probability"), max_digits=5, decimal_places=4, null=True, blank=True
    )

    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True)
    reached_mql_at = models.DateTimeField(null=True, blank=True, editable=False)
    reached_sql_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_at = models.DateTimeField(
        _("outcome decided"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the lead became won, lost or disqualified."),
    )
    assigned_by_rule = models.CharField(_("assigned by"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        db_index=False,  # never searched by; people are deactivated, not deleted
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Full-text search over who the lead is (no pg_trgm: the embedded server lacks it).
    search = models.GeneratedField(
        expression=SearchVector(
            "contact_name", "company_name", "email", "phone_normalised", config="simple"
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        indexes = [
            GinIndex(fields=["search"], name="lead_search"),
            models.Index(fields=["owner", "stage", "-created_at"], name="lead_owner_stage"),
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created"),
            models.Index(fields=["owner", "-created_at"], name="lead_owner_created"),
            models.Index(fields=["team", "stage"], name="lead_team_stage"),
            models.Index(fields=["decided_at"], name="lead_decided"),
            # The list's "highest score" and "longest without contact" orders over
            # everything an admin sees (a rep's own leads sort fine without them);
            # the second also serves "no contact for N days".
            models.Index(
                F("score").desc(), F("created_at").desc(), F("id").desc(), name="lead_score_order"
            ),
            models.Index(
                F("last_contact_at").asc(nulls_first=True), F("id"), name="lead_contact_order"
            ),
            models.Index(Lower("email"), name="lead_email_ci"),
            # Duplicate checks (imports, web forms) look leads up by phone.
            models.Index(
                fields=["phone_normalised"],
                name="lead_phone_norm",
                condition=~Q(phone_normalised=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=100), name="lead_score_0_100"
            ),
            models.CheckConstraint(
                condition=~Q(stage__in=[Stage.LOST, Stage.DISQUALIFIED]) | ~Q(lost_reason=""),
                name="lead_closed_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.company_name or self.contact_name or self.email or f"#{self.pk}"

    @property
    def display_name(self) -> str:
        if self.company_name and self.contact_name:
            return f"{self.contact_name} ({self.company_name})"
        return str(self)

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES


class LeadEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    STAGE = "stage", _("Stage")
    OWNER = "owner", _("Owner")
    TEAM = "team", _("Team")
    SCORE = "score", _("Score")
    TEMPERATURE = "temperature", _("Temperature")


class LeadEvent(models.Model):
    """One change of a lead: the timeline shown on the lead, and the KPI facts' source."""

    # (lead, created_at) below indexes it.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=20, choices=LeadEventKind.choices)
    from_value = models.CharField(max_length=200, blank=True)
    to_value = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["lead", "-created_at"], name="leadevent_lead_time")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_value} → {self.to_value}"


class EstimateStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")


OPEN_ESTIMATE_STATUSES = (EstimateStatus.DRAFT, EstimateStatus.SENT)


class Estimate(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="estimates", verbose_name=_("customer")
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="estimates",
        verbose_name=_("lead"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="estimates",
        verbose_name=_("owner"),
    )
    product_line = models.ForeignKey(
        ProductLine, on_delete=models.PROTECT, related_name="+", verbose_name=_("product line")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    amount = models.DecimalField(
        _("amount"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))]
    )
    valid_until = models.DateField(_("valid until"))
    status = models.CharField(
        _("status"), max_length=10, choices=EstimateStatus.choices, default=EstimateStatus.DRAFT
    )
    issued_on = models.DateField(
        _("issued on"), null=True, blank=True, help_text=_("The day it was sent to the customer.")
    )
    decided_on = models.DateField(_("decided on"), null=True, blank=True)
    # A copy of the lead's ``stage`` ("" without a lead), so the weighted pipeline
    # (amount x the stage's probability) of a team's open estimates needs no lookup
    # of each estimate's lead. Kept by database triggers (migration leads 0004) on
    # every write, whatever the path: an estimate's insert or change of lead, a
    # change of the lead's stage.
    lead_stage = models.CharField(
        _("lead stage"), max_length=20, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("estimate")
        verbose_name_plural = _("estimates")
        indexes = [
            models.Index(fields=["owner", "issued_on"], name="estimate_owner_issued"),
            models.Index(fields=["status", "valid_until"], name="estimate_status_valid"),
            # A team's open pipeline (dashboards, forecast): its reps' open estimates.
            # An OR, not IN: PostgreSQL prints IN back in a form that reads differently
            # once re-run, and the benchmark seed re-creates indexes from their text.
            models.Index(
                fields=["owner", "valid_until"],
                name="estimate_open_owner",
                condition=Q(status=EstimateStatus.DRAFT) | Q(status=EstimateStatus.SENT),
            ),
            models.Index(fields=["issued_on"], name="estimate_issued"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="estimate_amount_positive"),
            models.CheckConstraint(
                condition=Q(status=EstimateStatus.DRAFT) | Q(issued_on__isnull=False),
                name="estimate_sent_has_issue_date",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{_('Estimate')} #{self.pk}"


class DealStatus(models.TextChoices):
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Deal(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="deals", verbose_name=_("customer")
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("lead"),
    )
    estimate = models.OneToOneField(
        Estimate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deal",
        verbose_name=_("estimate"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("owner"),
    )
    product_line = models.ForeignKey(
        ProductLine, on_delete=models.PROTECT, related_name="+", verbose_name=_("product line")
    )
    territory = models.ForeignKey(
        Territory, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("territory")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    amount = models.DecimalField(_("amount"), **MONEY, validators=[MinValueValidator(0)])
    close_date = models.DateField(_("close date"))
    status = models.CharField(_("outcome"), max_length=10, choices=DealStatus.choices)
    lost_reason = models.CharField(
        _("lost reason"), max_length=30, choices=LostReason.choices, blank=True
    )
    # A copy of the lead's ``created_at``, so the sales cycle (lead created → deal
    # closed) of a dashboard's deals needs no lookup of each deal's lead. Kept by
    # database triggers (migration leads 0004) on every write, whatever the path:
    # a deal's insert or change of lead, a change of the lead's ``created_at``.
    lead_created_at = models.DateTimeField(_("lead created"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-close_date", "-pk"]
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        indexes = [
            models.Index(fields=["owner", "close_date"], name="deal_owner_close"),
            models.Index(fields=["close_date", "status"], name="deal_close_status"),
            models.Index(fields=["customer", "status", "close_date"], name="deal_customer"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(status=DealStatus.WON, lost_reason="")
                | (Q(status=DealStatus.LOST) & ~Q(lost_reason="")),
                name="deal_lost_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{_('Deal')} #{self.pk}"


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    EMAIL = "email", _("Email")
    MEETING = "meeting", _("Meeting")
    DEMO = "demo", _("Demo")
    SALES_MEETING = "sales_meeting", _("Sales meeting")
    EVENT = "event", _("Event / trade show")
    FOLLOW_UP = "follow_up", _("Follow-up")
    NOTE = "note", _("Note")


# Kinds that count as being in touch with the prospect ("last contact").
CONTACT_KINDS = (
    ActivityKind.CALL,
    ActivityKind.EMAIL,
    ActivityKind.MEETING,
    ActivityKind.DEMO,
    ActivityKind.EVENT,
    ActivityKind.FOLLOW_UP,
)


class Activity(models.Model):
    kind = models.CharField(_("type"), max_length=20, choices=ActivityKind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)
    occurred_at = models.DateTimeField(_("date"))
    due_at = models.DateTimeField(
        _("due"), null=True, blank=True, help_text=_("Set a due date to make it a to-do.")
    )
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="activities",
        verbose_name=_("owner"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("lead"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("customer"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("deal"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        indexes = [
            models.Index(fields=["owner", "occurred_at"], name="activity_owner_time"),
            models.Index(fields=["lead", "-occurred_at"], name="activity_lead_time"),
            models.Index(fields=["customer", "-occurred_at"], name="activity_customer_time"),
            models.Index(
                fields=["owner", "due_at"],
                name="activity_open_todo",
                condition=Q(due_at__isnull=False, done_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(lead__isnull=False) | Q(customer__isnull=False) | Q(deal__isnull=False),
                name="activity_linked",
            )
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_todo(self) -> bool:
        return self.due_at is not None and self.done_at is None


class RoutingStrategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin")
    LEAST_LOADED = "least_loaded", _("Least loaded")


class RoutingRule(models.Model):
    """Which team gets a new lead, and how a rep of that team is chosen.

    Rules are tried by priority (lowest first); a rule matches when each of its
    set conditions (territory, product line, source) matches the lead.
    """

    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveIntegerField(_("priority"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    territory = models.ForeignKey(
        Territory, on_delete=models.CASCADE, null=True, blank=True, verbose_name=_("territory")
    )
    product_line = models.ForeignKey(
        ProductLine,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        verbose_name=_("product line"),
    )
    source = models.CharField(_("source"), max_length=30, choices=LeadSource.choices, blank=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, verbose_name=_("team"))
    strategy = models.CharField(
        _("strategy"),
        max_length=20,
        choices=RoutingStrategy.choices,
        default=RoutingStrategy.ROUND_ROBIN,
    )
    # Round-robin position: the rep who got the last lead from this rule.
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["priority", "pk"]
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")

    def __str__(self) -> str:
        return self.name


class ImportKind(models.TextChoices):
    LEADS = "leads", _("Leads")
    CUSTOMERS = "customers", _("Customers")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded: choose the columns")
    VALIDATING = "validating", _("Checking rows")
    VALIDATED = "validated", _("Checked: ready to import")
    IMPORTING = "importing", _("Importing")
    DONE = "done", _("Imported")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """A CSV upload: kept in the database so any worker can read it."""

    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="imports"
    )
    file_name = models.CharField(_("file"), max_length=255)
    content = models.TextField()
    header = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    duplicate_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    imported_rows = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.file_name

    @property
    def progress_percent(self) -> int:
        return int(self.processed_rows * 100 / self.total_rows) if self.total_rows else 0


class WebLeadKey(models.Model):
    """An API key for one web form or chat widget; only its hash is stored."""

    name = models.CharField(_("name"), max_length=100)
    source = models.CharField(
        _("source"), max_length=30, choices=LeadSource.choices, default=LeadSource.INBOUND_CONTENT
    )
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("web-to-lead key")
        verbose_name_plural = _("web-to-lead keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class WinModel(models.Model):
    """The learned naive-Bayes counts of won/lost leads per feature value.

    One row per computation; the newest is in use. ``counts`` is
    {feature: {value: [won, lost]}}, ``won``/``lost`` the class totals.
    """

    won = models.PositiveIntegerField(default=0)
    lost = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"win model {self.computed_at:%Y-%m-%d %H:%M} ({self.won} won / {self.lost} lost)"
