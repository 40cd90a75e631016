"""Goals (quotas) and their revisions, and the daily KPI facts they are measured on.

Models hold fields and constraints; the rules live in ``goals.services`` (writes),
``goals.kpis`` (computing the facts) and ``goals.selectors`` (reading KPIs).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ProductLine, Team, Territory
from leads.models import MONEY, ActivityKind


class OwnerKind(models.TextChoices):
    REP = "rep", _("Sales rep")
    TEAM = "team", _("Team")
    COMPANY = "company", _("Company")


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")
    YEAR = "year", _("Year")
    CUSTOM = "custom", _("Custom")


class Metric(models.TextChoices):
    REVENUE_WON = "revenue_won", _("Revenue won")
    DEALS_WON = "deals_won", _("Deals won")
    ESTIMATE_VALUE = "estimate_value", _("Value of estimates issued")
    NEW_LEADS = "new_leads", _("New leads")
    ACTIVITIES = "activities", _("Activities")
    CSAT = "csat", _("CSAT")
    NPS = "nps", _("NPS")


class RevisionReason(models.TextChoices):
    PERFORMANCE = "performance", _("Performance")
    ECONOMY = "economy", _("Economy")
    COMPETITION = "competition", _("Competition")
    OTHER = "other", _("Other")


class Goal(models.Model):
    """A target for a rep, a team or the company, on one metric over one period.

    ``target`` is the target in force now; every change of it is a
    ``GoalRevision`` (``goals.selectors.goal_target_on`` answers which target was
    in force on a given day). A rep goal split from a team or company goal points
    to it through ``parent``.
    """

    owner_kind = models.CharField(_("for"), max_length=10, choices=OwnerKind.choices)
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="goals",
        verbose_name=_("sales rep"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="goals",
        verbose_name=_("team"),
    )
    period_kind = models.CharField(_("period"), max_length=10, choices=PeriodKind.choices)
    start = models.DateField(_("from"))
    end = models.DateField(_("to"))
    metric = models.CharField(_("metric"), max_length=20, choices=Metric.choices)
    activity_kind = models.CharField(
        _("activity type"),
        max_length=20,
        choices=ActivityKind.choices,
        blank=True,
        help_text=_("Only for the activities metric; empty: activities of every type."),
    )
    product_line = models.ForeignKey(
        ProductLine,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("product line"),
    )
    territory = models.ForeignKey(
        Territory,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("territory"),
    )
    target = models.DecimalField(_("target"), **MONEY)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="splits",
        verbose_name=_("split from"),
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

    class Meta:
        ordering = ["-start", "owner_kind", "pk"]
        verbose_name = _("goal")
        verbose_name_plural = _("goals")
        indexes = [
            models.Index(fields=["rep", "start", "end"], name="goal_rep_period"),
            models.Index(fields=["team", "start", "end"], name="goal_team_period"),
            models.Index(fields=["owner_kind", "start", "end"], name="goal_kind_period"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_kind=OwnerKind.REP, rep__isnull=False, team__isnull=True)
                | Q(owner_kind=OwnerKind.TEAM, rep__isnull=True, team__isnull=False)
                | Q(owner_kind=OwnerKind.COMPANY, rep__isnull=True, team__isnull=True),
                name="goal_owner_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(start__lte=models.F("end")), name="goal_start_before_end"
            ),
            models.CheckConstraint(
                condition=Q(activity_kind="") | Q(metric=Metric.ACTIVITIES),
                name="goal_activity_kind_only_for_activities",
            ),
            # NPS runs from -100 to 100; every other metric is a non-negative amount.
            models.CheckConstraint(
                condition=Q(metric=Metric.NPS) | Q(target__gte=0),
                name="goal_target_not_negative",
            ),
        ]

    def __str__(self) -> str:
        whom = self.rep or self.team or _("Company")
        return f"{whom}: {self.get_metric_display()} {self.start:%Y-%m-%d} - {self.end:%Y-%m-%d}"


class GoalRevision(models.Model):
    """A change of a goal's target, with why, by whom, and from which day it counts."""

    goal = models.ForeignKey(
        Goal, on_delete=models.CASCADE, related_name="revisions", verbose_name=_("goal")
    )
    old_target = models.DecimalField(_("old target"), **MONEY)
    new_target = models.DecimalField(_("new target"), **MONEY)
    reason = models.CharField(_("reason"), max_length=20, choices=RevisionReason.choices)
    comment = models.TextField(_("comment"), blank=True)
    revised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revised by"),
    )
    revised_at = models.DateTimeField(_("revised"), default=timezone.now)
    effective_from = models.DateField(_("in force from"))

    class Meta:
        ordering = ["effective_from", "revised_at", "pk"]
        verbose_name = _("goal revision")
        verbose_name_plural = _("goal revisions")
        indexes = [models.Index(fields=["goal", "effective_from"], name="goalrevision_goal_day")]

    def __str__(self) -> str:
        return f"{self.old_target} → {self.new_target} ({self.effective_from:%Y-%m-%d})"


class DailyRepFact(models.Model):
    """Additive KPI facts of one rep on one day, per product line and territory.

    Written only by ``goals.kpis`` (whole days recomputed, only differences
    written, so a rerun gives the same rows). Every column is a sum or a count,
    so any period and any rollup (team, company, product line) is a SUM over
    rows; each defaults to 0 in the database too, as a source fills only its own.
    What lands where:

    - deals: the close date, the deal's owner, product line and territory;
    - leads: the lead's current owner (``rep`` empty: nobody owns it yet) and
      territory; its product line when it has exactly one, otherwise none (a
      lead about several lines cannot be split additively);
      ``leads_created*``: the creation day (a cohort: the ``_reached_*`` and
      ``_won`` counts are the lead's state *now*, so these rows of an old day
      change when an old lead progresses — the nightly job recomputes the
      creation days of the leads that changed); ``leads_decided*``: the day it
      became won, lost or disqualified; ``leads_reached_mql/_sql``: that day;
    - estimates: the day issued (sent), the owner and product line, the lead's
      territory or else the customer's;
    - activities: the day they happened (open to-dos are not counted yet), the
      owner, the product line and territory of the deal, else of the lead (or
      the customer's territory);
    - surveys: filled by the feedback app (``goals.kpis.feedback_fact_sources``);
      ``surveys_answered`` counts the answers to the surveys sent that day.

    Not here, by design: the open weighted pipeline (a snapshot, not a daily
    fact), medians (not additive) and repeat business (needs each customer's
    earlier deals): ``goals.selectors`` reads those from the raw rows.

    The materialized view ``goals_weeklyrepfact`` (migration 0003) holds these
    columns summed by week inside a month, rep and product line; the KPI job
    refreshes it after each run, and the dashboards read long ranges from it
    (``goals.dashboards.weekly_span``). A migration changing a column here must
    re-create that view.
    """

    day = models.DateField(_("day"))
    # No foreign-key constraints in the database: the facts are derived from rows
    # whose own keys are checked, and a check per inserted fact (three lookups and
    # row locks each) was 40 % of a year's rebuild. Deleting a rep, product line
    # or territory through Django still deletes their facts (on_delete). No index
    # of their own either: reads go by (rep, day) or by day (the unique key).
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sales rep"),
        db_constraint=False,
        db_index=False,
    )
    product_line = models.ForeignKey(
        ProductLine,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("product line"),
        db_constraint=False,
        db_index=False,
    )
    territory = models.ForeignKey(
        Territory,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("territory"),
        db_constraint=False,
        db_index=False,
    )
    # Deals closed that day.
    revenue_won = models.DecimalField(_("revenue won"), **MONEY, default=0, db_default=0)
    deals_won = models.PositiveIntegerField(_("deals won"), default=0, db_default=0)
    deals_lost = models.PositiveIntegerField(_("deals lost"), default=0, db_default=0)
    # Days from lead created to deal won, over the won deals of the day that have a lead.
    cycle_days_sum = models.PositiveIntegerField(
        _("sales cycle days (sum)"), default=0, db_default=0
    )
    cycle_count = models.PositiveIntegerField(_("won deals with a lead"), default=0, db_default=0)
    # Leads.
    leads_created = models.PositiveIntegerField(_("leads created"), default=0, db_default=0)
    leads_created_reached_mql = models.PositiveIntegerField(
        _("of the leads created, reached MQL"), default=0, db_default=0
    )
    leads_created_reached_sql = models.PositiveIntegerField(
        _("of the leads created, reached SQL"), default=0, db_default=0
    )
    leads_created_won = models.PositiveIntegerField(
        _("of the leads created, won"), default=0, db_default=0
    )
    leads_decided = models.PositiveIntegerField(_("leads decided"), default=0, db_default=0)
    leads_decided_won = models.PositiveIntegerField(
        _("leads decided: won"), default=0, db_default=0
    )
    leads_reached_mql = models.PositiveIntegerField(
        _("leads reaching MQL"), default=0, db_default=0
    )
    leads_reached_sql = models.PositiveIntegerField(
        _("leads reaching SQL"), default=0, db_default=0
    )
    # Estimates issued (sent) that day.
    estimate_value_issued = models.DecimalField(
        _("estimate value issued"), **MONEY, default=0, db_default=0
    )
    estimates_issued = models.PositiveIntegerField(_("estimates issued"), default=0, db_default=0)
    # Activities, one column per ActivityKind (goals.kpis.ACTIVITY_COLUMNS).
    act_call = models.PositiveIntegerField(_("calls"), default=0, db_default=0)
    act_email = models.PositiveIntegerField(_("emails"), default=0, db_default=0)
    act_meeting = models.PositiveIntegerField(_("meetings"), default=0, db_default=0)
    act_demo = models.PositiveIntegerField(_("demos"), default=0, db_default=0)
    act_sales_meeting = models.PositiveIntegerField(_("sales meetings"), default=0, db_default=0)
    act_event = models.PositiveIntegerField(_("events"), default=0, db_default=0)
    act_follow_up = models.PositiveIntegerField(_("follow-ups"), default=0, db_default=0)
    act_note = models.PositiveIntegerField(_("notes"), default=0, db_default=0)
    # Customer satisfaction (the feedback app fills these).
    csat_answered = models.PositiveIntegerField(_("CSAT answers"), default=0, db_default=0)
    csat_satisfied = models.PositiveIntegerField(_("CSAT answers 4 or 5"), default=0, db_default=0)
    nps_answered = models.PositiveIntegerField(_("NPS answers"), default=0, db_default=0)
    nps_promoters = models.PositiveIntegerField(_("NPS promoters (9-10)"), default=0, db_default=0)
    nps_detractors = models.PositiveIntegerField(_("NPS detractors (0-6)"), default=0, db_default=0)
    surveys_sent = models.PositiveIntegerField(_("surveys sent"), default=0, db_default=0)
    surveys_answered = models.PositiveIntegerField(
        _("of the surveys sent, answered"), default=0, db_default=0
    )

    class Meta:
        ordering = ["-day", "rep", "product_line", "territory"]
        verbose_name = _("daily KPI fact")
        verbose_name_plural = _("daily KPI facts")
        constraints = [
            # NULLS NOT DISTINCT (PostgreSQL 15+): one row per key even where
            # product line, territory or rep is empty, so ON CONFLICT finds it.
            models.UniqueConstraint(
                fields=["day", "rep", "product_line", "territory"],
                name="dailyrepfact_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["rep", "day"], name="dailyrepfact_rep_day")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.rep_id or '-'}"


class ReviewCause(models.TextChoices):
    """Why a goal was missed or is at risk (the lost reasons of DESIGN.md, and the funnel)."""

    PRICE = "price", _("Price not competitive")
    PRODUCT = "product", _("Product fit")
    DELIVERY = "delivery", _("Delivery or manufacturing delay")
    SERVICE = "service", _("Customer service problem")
    REP = "rep", _("Rep performance")
    COMPETITOR = "competitor", _("Competitor chosen")
    NO_BUDGET = "no_budget", _("No budget / no decision")
    PIPELINE = "pipeline", _("Not enough leads or estimates")
    MARKET = "market", _("Economy or market")
    OTHER = "other", _("Other")


class ReviewStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")


class GoalReview(models.Model):
    """A manager's review of a missed or at-risk goal: the cause and what will be done."""

    goal = models.ForeignKey(
        Goal, on_delete=models.CASCADE, related_name="reviews", verbose_name=_("goal")
    )
    cause = models.CharField(_("cause"), max_length=20, choices=ReviewCause.choices)
    findings = models.TextField(_("findings"), blank=True)
    corrective_action = models.TextField(_("corrective action"))
    action_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="goal_actions",
        verbose_name=_("action owner"),
    )
    due_on = models.DateField(_("due"))
    status = models.CharField(
        _("status"), max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.OPEN
    )
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("goal review")
        verbose_name_plural = _("goal reviews")
        indexes = [
            models.Index(
                fields=["action_owner", "due_on"],
                name="goalreview_open_due",
                condition=Q(status="open"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.goal}: {self.get_cause_display()}"


class SnapshotKind(models.TextChoices):
    PERIOD_START = "period_start", _("Start of the period")
    WEEKLY = "weekly", _("Weekly")


class ForecastSnapshot(models.Model):
    """What one rep's forecast for a period was on a day: frozen, to measure accuracy later.

    ``forecast`` = revenue already won in the period + the weighted pipeline
    (open estimates times the probability of their lead's stage) as it stood on
    ``taken_on``. Forecast accuracy compares the period-start snapshot with the
    revenue finally won. One row per (rep, period, day): taking it twice is a no-op.
    """

    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="forecast_snapshots",
        verbose_name=_("sales rep"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("team then"),
    )
    period_kind = models.CharField(_("period"), max_length=10, choices=PeriodKind.choices)
    period_start = models.DateField(_("period from"))
    period_end = models.DateField(_("period to"))
    kind = models.CharField(_("kind"), max_length=12, choices=SnapshotKind.choices)
    taken_on = models.DateField(_("taken on"))
    won_to_date = models.DecimalField(_("won so far"), **MONEY)
    weighted_pipeline = models.DecimalField(_("weighted pipeline"), **MONEY)
    forecast = models.DecimalField(_("forecast"), **MONEY)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "rep", "taken_on"]
        verbose_name = _("forecast snapshot")
        verbose_name_plural = _("forecast snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["rep", "period_kind", "period_start", "taken_on"],
                name="one_snapshot_per_rep_period_day",
            )
        ]
        indexes = [
            models.Index(
                fields=["period_kind", "period_start", "kind"], name="snapshot_period_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rep} {self.period_start:%Y-%m-%d} @ {self.taken_on:%Y-%m-%d}"


class AwardKind(models.TextChoices):
    BONUS = "bonus", _("Bonus")
    TIME_OFF = "time_off", _("Time off")
    TRIP = "trip", _("Trip")
    OTHER = "other", _("Other")


class Award(models.Model):
    """Recognition given to a rep for a period (seed 002: bonus, time off, trips)."""

    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="awards",
        verbose_name=_("sales rep"),
    )
    title = models.CharField(_("title"), max_length=150)
    kind = models.CharField(_("kind"), max_length=10, choices=AwardKind.choices)
    value = models.DecimalField(
        _("value"), **MONEY, null=True, blank=True, help_text=_("Money value, if any.")
    )
    period_start = models.DateField(_("period from"))
    period_end = models.DateField(_("period to"))
    reason = models.TextField(_("reason"))
    awarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("awarded by"),
    )
    awarded_at = models.DateTimeField(_("awarded"), default=timezone.now)

    class Meta:
        ordering = ["-awarded_at", "-pk"]
        verbose_name = _("award")
        verbose_name_plural = _("awards")
        indexes = [models.Index(fields=["rep", "period_start"], name="award_rep_period")]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_start__lte=models.F("period_end")),
                name="award_period_in_order",
            ),
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0), name="award_value_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rep}: {self.title}"
