"""Recognition: awards (services and reads), award candidates, the balanced scorecard.

Seed 002 asks managers to recognise top performers (bonus, time off, trips);
seed 000 to judge reps on the quality of their sales, not only the quantity.
Awards are history: once given they are not edited or deleted here (an
administrator can correct a mistake in the Django admin).

Reads take a team (already checked with ``accounts.access.team_get_for_user``)
and cost a fixed number of queries whatever the number of reps: the facts are
summed per rep in SQL (GROUP BY), and what is not additive (median sales cycle,
repeat customers) is read from the raw deals, also grouped by rep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.access import managed_team_and_member_ids, scope_owned
from accounts.models import Role, Team, User
from goals.models import Award, AwardKind, DailyRepFact, Goal, GoalRevision, Metric, OwnerKind
from goals.selectors import Median, cycle_days, goal_target_on, ratio
from leads.models import Deal, DealStatus

ZERO = Decimal(0)
HUNDRED = Decimal(100)
SALES_PEOPLE = (Role.REP, Role.MANAGER)

# --- Awards --------------------------------------------------------------------------------


def awards_for_user(*, user: User | AnonymousUser) -> QuerySet[Award]:
    """Awards the user may see: their own; a manager their teams'; an admin all; marketing none."""
    return scope_owned(Award.objects.all(), user=user, owner_field="rep")


def award_recipients(*, actor: User) -> QuerySet[User]:
    """Whom ``actor`` may give an award to: an admin any active salesperson, a manager the
    active members of their teams (not themselves), anyone else nobody."""
    people = User.objects.filter(is_active=True, role__in=SALES_PEOPLE).order_by("display_name")
    if not actor.is_active:
        return people.none()
    if actor.role == Role.ADMIN:
        return people
    if actor.role == Role.MANAGER:
        _team_ids, member_ids = managed_team_and_member_ids(actor)
        return people.filter(pk__in=member_ids).exclude(pk=actor.pk)
    return people.none()


def award_create(
    *,
    actor: User,
    rep: User,
    title: str,
    kind: str,
    period_start: date | None,
    period_end: date | None,
    reason: str,
    value: Decimal | None = None,
) -> Award:
    """Record an award for ``rep``. Not idempotent on purpose: two identical awards are two
    awards (a bonus given twice); the form's redirect after POST guards against a reload."""
    if actor.role not in (Role.MANAGER, Role.ADMIN):
        raise ValidationError(_("Only managers and administrators give awards."))
    if not award_recipients(actor=actor).filter(pk=rep.pk).exists():
        raise ValidationError(
            {"rep": _("You can give awards only to active members of your teams.")}
        )
    errors: dict[str, str] = {}
    title = (title or "").strip()
    reason = (reason or "").strip()
    if not title:
        errors["title"] = _("Give the award a title.")
    if kind not in AwardKind.values:
        errors["kind"] = _("Choose the kind of award.")
    if value is not None and Decimal(value) < 0:
        errors["value"] = _("The value cannot be negative.")
    if period_start is None:
        errors["period_start"] = _("Give the first day of the period.")
    if period_end is None:
        errors["period_end"] = _("Give the last day of the period.")
    elif period_start is not None and period_end < period_start:
        errors["period_end"] = _("The period ends before it starts.")
    if not reason:
        errors["reason"] = _("Say why the award is given.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        return Award.objects.create(
            rep=rep,
            title=title,
            kind=kind,
            value=value,
            period_start=period_start,
            period_end=period_end,
            reason=reason,
            awarded_by=actor,
            awarded_at=timezone.now(),
        )


# --- Shared: the team's people and their facts ------------------------------------------------


def team_members(team: Team) -> list[User]:
    """The active salespeople of the team, by name (one query)."""
    return list(
        User.objects.filter(team=team, is_active=True, role__in=SALES_PEOPLE).order_by(
            "display_name", "pk"
        )
    )


def _csat(satisfied: int, answered: int) -> Decimal | None:
    share = ratio(satisfied, answered)
    return share * HUNDRED if share is not None else None


# --- Award candidates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    rep: User
    revenue: Decimal  # revenue won on the rep's revenue goals of the period
    target: Decimal  # the sum of those goals' targets
    attainment: Decimal
    csat: Decimal
    csat_answered: int


@dataclass(frozen=True)
class Candidates:
    team_csat: Decimal | None
    rows: list[Candidate]


def award_candidates(*, team: Team, start: date, end: date) -> Candidates:
    """Reps of the team worth recognising for [start, end], best attainment first.

    Attainment: revenue won ÷ target over the rep's revenue goals lying within the
    period (each goal measured on its own range, product line and territory; the
    target in force on the goal's last day). Kept only when the rep's CSAT in the
    period is above the team's and rests on at least one answer: selling a lot
    to unhappy customers is not what is rewarded (seed 000).
    Four queries: members, goals, their revisions, and the facts grouped by rep.
    """
    members = team_members(team)
    goals = list(
        Goal.objects.filter(
            owner_kind=OwnerKind.REP,
            rep__in=[member.pk for member in members],
            metric=Metric.REVENUE_WON,
            start__gte=start,
            end__lte=end,
        ).prefetch_related(Prefetch("revisions", queryset=GoalRevision.objects.order_by()))
    )
    # One SUM per goal, each filtered to the goal's own scope, in the same grouped query.
    goal_sums = {}
    for goal in goals:
        scope = Q(rep=goal.rep_id, day__gte=goal.start, day__lte=goal.end)
        if goal.product_line_id:
            scope &= Q(product_line=goal.product_line_id)
        if goal.territory_id:
            scope &= Q(territory=goal.territory_id)
        goal_sums[f"goal_{goal.pk}"] = Sum("revenue_won", filter=scope)
    facts = {
        row["rep"]: row
        for row in DailyRepFact.objects.filter(
            rep__in=[member.pk for member in members], day__gte=start, day__lte=end
        )
        .values("rep")
        .annotate(
            csat_answered=Sum("csat_answered"),
            csat_satisfied=Sum("csat_satisfied"),
            **goal_sums,
        )
    }
    team_answered = sum(row["csat_answered"] or 0 for row in facts.values())
    team_satisfied = sum(row["csat_satisfied"] or 0 for row in facts.values())
    team_csat = _csat(team_satisfied, team_answered)

    by_rep: dict[int, list[Goal]] = {}
    for goal in goals:
        by_rep.setdefault(goal.rep_id, []).append(goal)
    rows = []
    for member in members:
        row = facts.get(member.pk, {})
        answered = row.get("csat_answered") or 0
        csat = _csat(row.get("csat_satisfied") or 0, answered)
        rep_goals = by_rep.get(member.pk)
        if not rep_goals or csat is None or team_csat is None or csat <= team_csat:
            continue
        revenue = sum((row.get(f"goal_{goal.pk}") or ZERO for goal in rep_goals), ZERO)
        target = sum(
            (goal_target_on(goal, goal.end, goal.revisions.all()) for goal in rep_goals), ZERO
        )
        attainment = ratio(revenue, target)
        if attainment is None:
            continue
        rows.append(
            Candidate(
                rep=member,
                revenue=revenue,
                target=target,
                attainment=attainment,
                csat=csat,
                csat_answered=answered,
            )
        )
    rows.sort(key=lambda c: (-c.attainment, -c.revenue, c.rep.display_name))
    return Candidates(team_csat=team_csat, rows=rows)


# --- Balanced scorecard ------------------------------------------------------------------

# The parts, in display order; each a key of settings.SCORECARD_WEIGHTS.
PARTS = (
    "volume",
    "conversion",
    "average_ticket",
    "cycle_time",
    "repeat_business",
    "satisfaction",
)
LOWER_IS_BETTER = {"cycle_time"}
SHARE_PARTS = {"conversion", "repeat_business"}  # 0..1, shown as %


@dataclass
class ScorePart:
    value: Decimal | None  # the rep's KPI (volume in money, shares 0..1, days, CSAT 0..100)
    score: Decimal | None = None  # 0..100 against the team's best; None without data
    percent: bool = False  # a share (0..1) shown as a percentage

    @property
    def shown(self) -> Decimal | None:
        """The value as the page shows it (shares in %)."""
        if self.value is None or not self.percent:
            return self.value
        return self.value * HUNDRED


@dataclass
class ScoreRow:
    rep: User | None  # None: the team average
    parts: dict[str, ScorePart] = field(default_factory=dict)
    total: Decimal | None = None

    @property
    def in_order(self) -> list[ScorePart]:
        """The parts in display order (templates cannot index a dict by a variable)."""
        return [self.parts[part] for part in PARTS]


@dataclass(frozen=True)
class Scorecard:
    start: date
    end: date
    weights: dict[str, Decimal]
    rows: list[ScoreRow]
    average: ScoreRow


def weighted_total(scores: dict[str, Decimal | None], weights: dict[str, Any]) -> Decimal | None:
    """Σ weight * score ÷ Σ weight over the parts that have a score; None if none has."""
    present = {part: score for part, score in scores.items() if score is not None}
    weight_sum = sum((Decimal(str(weights.get(part, 0))) for part in present), ZERO)
    if not present or weight_sum == 0:
        return None
    return (
        sum((Decimal(str(weights.get(part, 0))) * score for part, score in present.items()), ZERO)
        / weight_sum
    )


def part_score(
    value: Decimal | None, best: Decimal | None, *, lower_is_better: bool
) -> Decimal | None:
    """0..100: the rep's value against the team's best (for cycle time, best ÷ value).

    A cycle under one day counts as one day, so a same-day deal neither divides
    by zero nor makes every other rep score 0.
    """
    if value is None or best is None:
        return None
    if lower_is_better:
        return Decimal(100) * max(best, Decimal(1)) / max(value, Decimal(1))
    if best <= 0:
        return None  # nobody in the team has any: nothing to measure against
    return Decimal(100) * value / best


def scorecard_for_team(*, team: Team, start: date, end: date) -> Scorecard:
    """The balanced scorecard of the team's reps over [start, end].

    Parts: volume (sales volume), conversion (win rate), average ticket, cycle time
    (median days from lead created to deal won; lower is better), repeat business
    rate and satisfaction (CSAT). Each part scores 0..100 against the team's best
    rep; a part the rep has no data for is left out and the weights of the others
    re-normalised (a rep without surveys is not punished for it). Three queries:
    members, the facts grouped by rep, the raw won deals grouped by rep.
    """
    members = team_members(team)
    member_ids = [member.pk for member in members]
    facts = {
        row["rep"]: row
        for row in DailyRepFact.objects.filter(rep__in=member_ids, day__gte=start, day__lte=end)
        .values("rep")
        .annotate(
            revenue_won=Sum("revenue_won"),
            deals_won=Sum("deals_won"),
            deals_lost=Sum("deals_lost"),
            csat_answered=Sum("csat_answered"),
            csat_satisfied=Sum("csat_satisfied"),
        )
    }
    returning = Deal.objects.filter(status=DealStatus.WON, close_date__lt=start).values("customer")
    raw = {
        row["owner"]: row
        for row in Deal.objects.filter(
            owner__in=member_ids, status=DealStatus.WON, close_date__gte=start, close_date__lte=end
        )
        .values("owner")
        .annotate(
            cycle_median=Median(cycle_days(), filter=Q(lead__isnull=False)),
            customers=Count("customer", distinct=True),
            repeat=Count("customer", distinct=True, filter=Q(customer__in=returning)),
        )
    }
    weights = {part: Decimal(str(weight)) for part, weight in settings.SCORECARD_WEIGHTS.items()}

    rows = []
    for member in members:
        totals = facts.get(member.pk, {})
        deals = raw.get(member.pk, {})
        revenue = totals.get("revenue_won") or ZERO
        won, lost = totals.get("deals_won") or 0, totals.get("deals_lost") or 0
        median = deals.get("cycle_median")
        values = {
            # No deal closed at all: no data (a new rep), rather than a volume of 0.
            "volume": revenue if won + lost else None,
            "conversion": ratio(won, won + lost),
            "average_ticket": ratio(revenue, won),
            "cycle_time": Decimal(str(median)) if median is not None else None,
            "repeat_business": ratio(deals.get("repeat") or 0, deals.get("customers") or 0),
            "satisfaction": _csat(
                totals.get("csat_satisfied") or 0, totals.get("csat_answered") or 0
            ),
        }
        parts = {p: ScorePart(values[p], percent=p in SHARE_PARTS) for p in PARTS}
        rows.append(ScoreRow(rep=member, parts=parts))

    for part in PARTS:
        present = [row.parts[part].value for row in rows if row.parts[part].value is not None]
        if not present:
            continue
        best = min(present) if part in LOWER_IS_BETTER else max(present)
        for row in rows:
            row.parts[part].score = part_score(
                row.parts[part].value, best, lower_is_better=part in LOWER_IS_BETTER
            )
    for row in rows:
        row.total = weighted_total({p: row.parts[p].score for p in PARTS}, weights)

    average = ScoreRow(rep=None)
    for part in PARTS:
        average.parts[part] = ScorePart(
            value=_mean([row.parts[part].value for row in rows]),
            score=_mean([row.parts[part].score for row in rows]),
            percent=part in SHARE_PARTS,
        )
    average.total = _mean([row.total for row in rows])
    return Scorecard(start=start, end=end, weights=weights, rows=rows, average=average)


def _mean(values: list[Decimal | None]) -> Decimal | None:
    present = [value for value in values if value is not None]
    return sum(present, ZERO) / len(present) if present else None
