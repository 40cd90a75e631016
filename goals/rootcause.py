"""Why a goal was missed or is at risk: the questions seed 002 says a manager must ask.

Is it the product or the price (lost reasons), delivery or customer service
(lost reasons, satisfaction and open follow-up cases), the marketing and the
pipeline (where leads are lost, estimate coverage), or the rep's own work (win
rate and conversion against the team, activities)? Each section carries one
plain sentence saying what it suggests.

Everything is read in a constant number of queries whatever the data size:
the team's members, the facts of the scope for this and the previous period
grouped by product line and territory, the comparison group's facts, the lost
deals by reason, the leads lost by the stage they left, the revenue quota and
the open follow-up cases.

Comparisons with the previous period use the same number of days: while the
period runs, its first N days against the previous period's first N days.
Estimate coverage while the period runs compares the value issued so far with
the revenue quota prorated to the days elapsed (the DESIGN.md ratio once the
period is over).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from feedback.models import OPEN_CASE_STATUSES, FollowUpCase
from goals.kpis import ACTIVITY_COLUMNS, FACT_COLUMNS, MONEY_COLUMNS
from goals.models import DailyRepFact, Goal, Metric, OwnerKind
from goals.selectors import (
    AT_RISK,
    MISSED,
    GoalProgress,
    fact_totals,
    goal_actual,
    goal_progress,
    ratio,
    revenue_quota_for,
)
from leads.models import (
    ActivityKind,
    Deal,
    DealStatus,
    LeadEvent,
    LeadEventKind,
    LostReason,
    Stage,
)

CASES_SHOWN = 10


@dataclass
class BreakdownRow:
    label: str
    current: Decimal | None
    previous: Decimal | None

    @property
    def change(self) -> Decimal | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous


@dataclass
class CountRow:
    label: str
    count: int
    amount: Decimal | None = None


@dataclass
class Comparison:
    label: str
    scope: Decimal | None
    average: Decimal | None


@dataclass
class Section:
    title: str
    sentence: str
    rows: list[Any] = field(default_factory=list)


@dataclass
class RootCause:
    progress: GoalProgress
    needs_review: bool
    start: date
    end: date
    previous_start: date
    previous_end: date
    gap_to_target: Decimal | None
    gap_to_pace: Decimal | None
    comparison_label: str
    sections: dict[str, Section]
    open_cases: list[FollowUpCase]
    open_case_count: int


def _zero() -> dict[str, Any]:
    return {column: Decimal(0) if column in MONEY_COLUMNS else 0 for column in FACT_COLUMNS}


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for column in FACT_COLUMNS:
        into[column] += row[column] or 0


def _scope(goal: Goal) -> tuple[list[int] | None, Any, str]:
    """(reps of the goal or None for everyone, reps to compare with or None, their name).

    A rep is compared with their team; a team with the whole company; the
    company with nobody. One query (the team's members).
    """
    if goal.owner_kind == OwnerKind.COMPANY:
        return None, None, ""
    team_id = goal.team_id if goal.owner_kind == OwnerKind.TEAM else goal.rep.team_id
    members = (
        list(User.objects.filter(team=team_id).values_list("pk", flat=True)) if team_id else []
    )
    if goal.owner_kind == OwnerKind.TEAM:
        return sorted(members), None, _("the company")
    return [goal.rep_id], sorted(members) or [goal.rep_id], _("the team")


def _rep_q(reps: list[int] | None, prefix: str, with_unassigned: bool = False) -> Q:
    if reps is None:
        return Q() if with_unassigned else Q(**{f"{prefix}__isnull": False})
    return Q(**{f"{prefix}__in": reps})


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def root_cause(*, goal: Goal, today: date) -> RootCause:
    """The root-cause analysis of ``goal`` with the facts up to yesterday."""
    progress = goal_progress([goal], today=today)[0]
    last_day = progress.last_day
    start = goal.start
    end = min(goal.end, max(last_day, goal.start))
    days = (end - start).days + 1
    previous_start = start - timedelta(days=(goal.end - goal.start).days + 1)
    previous_end = previous_start + timedelta(days=days - 1)
    reps, compare_reps, comparison_label = _scope(goal)
    include_unassigned = goal.owner_kind == OwnerKind.COMPANY and goal.metric == Metric.NEW_LEADS

    # Facts of the scope, this period and the previous one, by product line and territory.
    rows = list(
        DailyRepFact.objects.filter(
            _rep_q(reps, "rep", include_unassigned),
            Q(day__gte=start, day__lte=end) | Q(day__gte=previous_start, day__lte=previous_end),
        )
        .annotate(
            current=Case(
                When(day__gte=start, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        .values("current", "product_line", "product_line__name", "territory", "territory__name")
        .annotate(**{column: Sum(column) for column in FACT_COLUMNS})
    )
    narrowed = {"current": _zero(), "previous": _zero()}
    whole = {"current": _zero(), "previous": _zero()}
    by_line: dict[str, dict[str, dict[str, Any]]] = defaultdict(
        lambda: {"current": _zero(), "previous": _zero()}
    )
    by_territory: dict[str, dict[str, dict[str, Any]]] = defaultdict(
        lambda: {"current": _zero(), "previous": _zero()}
    )
    for row in rows:
        when = "current" if row["current"] else "previous"
        _add(whole[when], row)
        line_ok = goal.product_line_id is None or row["product_line"] == goal.product_line_id
        territory_ok = goal.territory_id is None or row["territory"] == goal.territory_id
        if line_ok and territory_ok:
            _add(narrowed[when], row)
        if territory_ok:
            _add(by_line[row["product_line__name"] or _("No product line")][when], row)
        if line_ok:
            _add(by_territory[row["territory__name"] or _("No territory")][when], row)

    sections: dict[str, Section] = {}
    actual, target = progress.actual, progress.target
    gap_to_target = target - actual if actual is not None else None
    needed = progress.needed_by_now
    gap_to_pace = needed - actual if needed is not None and actual is not None else None
    needs_review = progress.status in (MISSED, AT_RISK)
    if gap_to_target is not None and gap_to_target <= 0:
        gap_sentence = _("The target is reached.")
    elif gap_to_pace is not None and gap_to_pace <= 0:
        gap_sentence = _("This goal is on track: the actual is at or above what pace needs by now.")
    elif gap_to_target is None:
        gap_sentence = _("Nothing is counted yet for this goal.")
    elif gap_to_pace is not None and last_day < goal.end:
        gap_sentence = _(
            "The actual is %(gap)s short of the target and %(pace)s short of what the pace "
            "needs by now."
        ) % {"gap": f"{gap_to_target:,.2f}", "pace": f"{gap_to_pace:,.2f}"}
    else:
        gap_sentence = _("The actual is %(gap)s short of the target.") % {
            "gap": f"{gap_to_target:,.2f}"
        }
    sections["gap"] = Section(_("The gap"), gap_sentence)

    for key, title, groups, no_fall in (
        (
            "product_lines",
            _("By product line"),
            by_line,
            _("No product line fell compared with the previous period."),
        ),
        (
            "territories",
            _("By territory"),
            by_territory,
            _("No territory fell compared with the previous period."),
        ),
    ):
        breakdown = [
            BreakdownRow(
                label=label,
                current=goal_actual(goal, figures["current"]),
                previous=goal_actual(goal, figures["previous"]),
            )
            for label, figures in sorted(groups.items())
        ]
        # Lines or territories with only other figures (activities, leads) say nothing here.
        breakdown = [row for row in breakdown if row.current or row.previous]
        falls = [row for row in breakdown if row.change is not None and row.change < 0]
        if falls:
            worst = min(falls, key=lambda row: row.change or 0)
            sentence = _("The biggest fall compared with the previous period is in %(name)s.") % {
                "name": worst.label
            }
        else:
            sentence = no_fall
        sections[key] = Section(title, sentence, breakdown)

    # Lost deals in the period, by lost reason (raw deals of the scope).
    lost = Deal.objects.filter(
        _rep_q(reps, "owner"),
        status=DealStatus.LOST,
        close_date__gte=start,
        close_date__lte=end,
    )
    if goal.product_line_id is not None:
        lost = lost.filter(product_line=goal.product_line_id)
    if goal.territory_id is not None:
        lost = lost.filter(territory=goal.territory_id)
    lost_rows = [
        CountRow(
            label=str(LostReason(row["lost_reason"]).label)
            if row["lost_reason"] in LostReason.values
            else row["lost_reason"] or _("Other"),
            count=row["count"],
            amount=row["amount"] or Decimal(0),
        )
        for row in lost.values("lost_reason")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("-count", "-amount", "lost_reason")
    ]
    sections["lost_deals"] = Section(
        _("Lost deals by reason"),
        _("Most lost deals were lost on: %(reason)s.") % {"reason": lost_rows[0].label}
        if lost_rows
        else _("No deals were lost in this period."),
        lost_rows,
    )

    # Leads lost or disqualified in the period, by the stage they left.
    zone = ZoneInfo(settings.TIME_ZONE)
    since = datetime.combine(start, time.min, tzinfo=zone)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    events = LeadEvent.objects.filter(
        _rep_q(reps, "lead__owner"),
        kind=LeadEventKind.STAGE,
        to_value__in=(Stage.LOST, Stage.DISQUALIFIED),
        created_at__gte=since,
        created_at__lt=until,
    )
    if goal.territory_id is not None:
        events = events.filter(lead__territory=goal.territory_id)
    stage_labels = dict(Stage.choices)
    funnel_rows = [
        CountRow(
            label=str(stage_labels.get(row["from_value"], row["from_value"] or "—")),
            count=row["count"],
        )
        for row in events.values("from_value")
        .annotate(count=Count("pk"))
        .order_by("-count", "from_value")
    ]
    sections["funnel"] = Section(
        _("Where leads were lost"),
        _("Most leads were lost or disqualified at the %(stage)s stage.")
        % {"stage": funnel_rows[0].label}
        if funnel_rows
        else _("No leads were lost or disqualified in this period."),
        funnel_rows,
    )

    # Win rate, conversion and satisfaction against the comparison group.
    scope_now = narrowed["current"]
    # A team is compared with every rep of the company; the company with no one.
    if compare_reps is None and reps is not None:
        compare_reps = User.objects.all()
    group = (
        fact_totals(
            reps=compare_reps,
            start=start,
            end=end,
            product_line=goal.product_line_id,
            territory=goal.territory_id,
        )
        if compare_reps is not None
        else None
    )

    def rates(totals: dict[str, Any] | None) -> dict[str, Decimal | None]:
        if totals is None:
            return {"win": None, "conversion": None, "csat": None, "nps": None}
        nps = ratio(totals["nps_promoters"] - totals["nps_detractors"], totals["nps_answered"])
        csat = ratio(totals["csat_satisfied"], totals["csat_answered"])
        return {
            "win": ratio(totals["deals_won"], totals["deals_won"] + totals["deals_lost"]),
            "conversion": ratio(totals["leads_decided_won"], totals["leads_decided"]),
            "csat": csat * 100 if csat is not None else None,
            "nps": nps * 100 if nps is not None else None,
        }

    mine, theirs = rates(scope_now), rates(group)
    win_rows = [
        Comparison(_("Win rate"), mine["win"], theirs["win"]),
        Comparison(_("Lead conversion"), mine["conversion"], theirs["conversion"]),
    ]
    below = [row.label for row in win_rows if _below(row)]
    if group is None:
        win_sentence = _("The company is compared with no one: see the other sections.")
    elif below:
        win_sentence = _("Below the average of %(group)s: %(what)s.") % {
            "group": comparison_label,
            "what": ", ".join(str(label) for label in below),
        }
    else:
        win_sentence = _("Win rate and conversion are not below the average of %(group)s.") % {
            "group": comparison_label
        }
    sections["win_rate"] = Section(_("Win rate and conversion"), win_sentence, win_rows)

    # Estimate coverage: value issued ÷ the revenue quota (prorated while the period runs).
    quota_goals = Goal.objects.filter(
        owner_kind=goal.owner_kind,
        rep=goal.rep_id,
        team=goal.team_id,
        metric=Metric.REVENUE_WON,
        start=goal.start,
        end=goal.end,
        product_line=goal.product_line_id,
        territory=goal.territory_id,
    )
    quota = revenue_quota_for(quota_goals)
    share = Decimal(days) / Decimal((goal.end - goal.start).days + 1)
    issued = Decimal(scope_now["estimate_value_issued"])
    coverage = ratio(issued, quota * share) if quota is not None else None
    standard = settings.ESTIMATE_COVERAGE_STANDARD
    if coverage is None:
        coverage_sentence = _(
            "There is no revenue goal for this scope and period to measure against."
        )
    elif coverage < standard:
        coverage_sentence = _(
            "Estimates issued cover %(coverage)s times the quota, below the standard "
            "of %(standard)s: not enough in the pipeline."
        ) % {"coverage": f"{coverage:.1f}", "standard": f"{standard:.1f}"}
    else:
        coverage_sentence = _(
            "Estimates issued cover %(coverage)s times the quota: the standard is met."
        ) % {"coverage": f"{coverage:.1f}"}
    sections["coverage"] = Section(
        _("Estimate coverage"),
        coverage_sentence,
        [
            Comparison(_("Estimate value issued"), issued, None),
            Comparison(_("Revenue quota"), quota, None),
            Comparison(_("Coverage"), coverage, standard),
        ],
    )

    # Activities against the previous period (same number of days).
    activity_rows = [
        BreakdownRow(
            label=str(label),
            current=Decimal(narrowed["current"][ACTIVITY_COLUMNS[kind]]),
            previous=Decimal(narrowed["previous"][ACTIVITY_COLUMNS[kind]]),
        )
        for kind, label in ActivityKind.choices
    ]
    now_total = sum((row.current or 0 for row in activity_rows), Decimal(0))
    before_total = sum((row.previous or 0 for row in activity_rows), Decimal(0))
    if now_total < before_total:
        activity_sentence = _("Activities fell from %(before)s to %(now)s.") % {
            "before": before_total,
            "now": now_total,
        }
    else:
        activity_sentence = _("Activities did not fall (%(before)s before, %(now)s now).") % {
            "before": before_total,
            "now": now_total,
        }
    sections["activities"] = Section(_("Activities"), activity_sentence, activity_rows)

    # Satisfaction and the follow-up cases still open.
    cases = (
        FollowUpCase.objects.filter(_rep_q(reps, "rep"), status__in=OPEN_CASE_STATUSES)
        .select_related("customer", "rep")
        .order_by("deadline", "pk")
    )
    open_cases = list(cases[: CASES_SHOWN + 1])
    open_case_count = len(open_cases)
    open_cases = open_cases[:CASES_SHOWN]
    satisfaction_rows = [
        Comparison(_("CSAT"), mine["csat"], theirs["csat"]),
        Comparison(_("NPS"), mine["nps"], theirs["nps"]),
    ]
    low = [str(row.label) for row in satisfaction_rows if _below(row)]
    cases_text = ngettext(
        "%(count)s open follow-up case", "%(count)s open follow-up cases", open_case_count
    ) % {"count": _more(open_case_count)}
    if low:
        satisfaction_sentence = _("%(what)s below the average of %(group)s; %(cases)s.") % {
            "what": ", ".join(low),
            "group": comparison_label,
            "cases": cases_text,
        }
    else:
        satisfaction_sentence = _("Satisfaction is not below the average; %(cases)s.") % {
            "cases": cases_text
        }
    sections["satisfaction"] = Section(
        _("Customer satisfaction"), satisfaction_sentence, satisfaction_rows
    )

    return RootCause(
        progress=progress,
        needs_review=needs_review,
        start=start,
        end=end,
        previous_start=previous_start,
        previous_end=previous_end,
        gap_to_target=gap_to_target,
        gap_to_pace=gap_to_pace,
        comparison_label=comparison_label,
        sections=sections,
        open_cases=open_cases,
        open_case_count=open_case_count,
    )


def _below(row: Comparison) -> bool:
    return row.scope is not None and row.average is not None and row.scope < row.average


def _more(count: int) -> str:
    return f"{CASES_SHOWN}+" if count > CASES_SHOWN else str(count)
