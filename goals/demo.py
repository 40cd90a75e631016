"""Demo and benchmark goals (``manage.py seed_demo``).

For every team with reps: a monthly revenue goal per team for each month of the
last year and the current month, split to its reps (the rep goals point to the
team goal, as ``goals.services.goal_split`` makes them); a quarterly revenue
goal per team and a quarterly call goal per rep for the current quarter; a
yearly company revenue goal (when there is an admin to have set it). Targets
follow each rep's real won revenue (their monthly average over the year, times
a factor between 0.8 and 1.25 drawn per rep and month), so some goals are met
and some missed. A few past goals carry revisions with their reason, and the
worst missed rep goal of last month in each of the first teams gets a review.

Deterministic (``random.Random`` with a fixed seed per team, so adding a team
does not shift the others) and idempotent: a team that already has its monthly
revenue goal for a month is left alone for that month. Written with
``bulk_create`` (100 reps x 13 months is a few thousand rows: well under a second).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import Role, Team, User
from goals.models import (
    Goal,
    GoalReview,
    GoalRevision,
    Metric,
    OwnerKind,
    PeriodKind,
    ReviewCause,
    RevisionReason,
)
from goals.services import period_bounds
from leads.demo import PipelineResult
from leads.models import ActivityKind, Deal, DealStatus

GOALS_SEED = "salesperf-demo:goals"
MONTHS_BACK = 12
DEFAULT_MONTHLY_REVENUE = Decimal(20000)
ROUND_TO = Decimal(1000)
REVISED_PER_TEAM = 3
REVIEWED_TEAMS = 2
REVISION_COMMENTS = {
    RevisionReason.ECONOMY: "Customers are postponing purchases this month.",
    RevisionReason.COMPETITION: "A competitor cut prices in our main territory.",
    RevisionReason.PERFORMANCE: "Strong start of the month: target raised.",
}
REVIEW_TEXTS = (
    (
        ReviewCause.PRICE,
        "Three of the lost deals went to cheaper offers.",
        "Review the discount rules with the rep; prepare a price comparison sheet.",
    ),
    (
        ReviewCause.PIPELINE,
        "Too few estimates issued in the first half of the month.",
        "Weekly pipeline review; at least five new estimates a week.",
    ),
)


def _months(today: date) -> list[date]:
    """The first day of each month of the last year and of the current month, oldest first."""
    first = today.replace(day=1)
    months = []
    for back in range(MONTHS_BACK, -1, -1):
        index = first.year * 12 + first.month - 1 - back
        months.append(date(index // 12, index % 12 + 1, 1))
    return months


def _round(value: Decimal) -> Decimal:
    return max(ROUND_TO, (value / ROUND_TO).quantize(Decimal(1)) * ROUND_TO)


def _won_by_rep_and_month(
    reps: list[int], since: date, until: date
) -> dict[tuple[int, date], Decimal]:
    rows = (
        Deal.objects.filter(
            owner__in=reps, status=DealStatus.WON, close_date__gte=since, close_date__lte=until
        )
        .annotate(month=TruncMonth("close_date"))
        .values("owner", "month")
        .annotate(revenue=Sum("amount"))
    )
    return {(row["owner"], row["month"]): row["revenue"] for row in rows}


def seed_goals(*, today: date, teams: Iterable[str] | None = None) -> PipelineResult | None:
    """Goals for the named teams (all active teams when None); None when every one of
    their months already has its goals (nothing is changed then)."""
    started = time.monotonic()
    result = PipelineResult()
    team_rows = Team.objects.filter(is_active=True).order_by("name", "pk")
    if teams is not None:
        team_rows = team_rows.filter(name__in=list(teams))
    team_list = list(team_rows.prefetch_related("managers"))
    members: dict[int, list[User]] = defaultdict(list)
    for rep in User.objects.filter(team__in=team_list, role=Role.REP, is_active=True).order_by(
        "display_name", "pk"
    ):
        members[rep.team_id].append(rep)
    months = _months(today)
    existing = set(
        Goal.objects.filter(
            owner_kind=OwnerKind.TEAM,
            team__in=team_list,
            metric=Metric.REVENUE_WON,
            period_kind=PeriodKind.MONTH,
            start__in=months,
            product_line__isnull=True,
            territory__isnull=True,
        ).values_list("team", "start")
    )
    todo = [
        (team, month)
        for team in team_list
        if members[team.pk]
        for month in months
        if (team.pk, month) not in existing
    ]
    if not todo:
        return None
    all_reps = [rep.pk for team in team_list for rep in members[team.pk]]
    won = _won_by_rep_and_month(all_reps, months[0], today)
    average = {
        pk: _round(
            sum((won.get((pk, month), Decimal(0)) for month in months[:-1]), Decimal(0))
            / MONTHS_BACK
        )
        if any((pk, month) in won for month in months[:-1])
        else DEFAULT_MONTHLY_REVENUE
        for pk in all_reps
    }
    admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").first()
    now = timezone.now()

    # Team goals first (their ids are the rep goals' parents), then the rep goals.
    rep_targets: dict[tuple[int, date], dict[int, Decimal]] = {}
    team_goals = []
    rngs = {team.pk: random.Random(f"{GOALS_SEED}:{team.name}") for team in team_list}  # noqa: S311
    for team, month in todo:
        rng = rngs[team.pk]
        targets = {
            rep.pk: _round(average[rep.pk] * Decimal(str(round(rng.uniform(0.8, 1.25), 2))))
            for rep in members[team.pk]
        }
        rep_targets[(team.pk, month)] = targets
        manager = next(iter(team.managers.all()), None)
        start, end = period_bounds(PeriodKind.MONTH, month)
        team_goals.append(
            Goal(
                owner_kind=OwnerKind.TEAM,
                team=team,
                period_kind=PeriodKind.MONTH,
                start=start,
                end=end,
                metric=Metric.REVENUE_WON,
                target=sum(targets.values(), Decimal(0)),
                created_by=manager,
            )
        )
    Goal.objects.bulk_create(team_goals, batch_size=1000)
    result.counts["team goals"] += len(team_goals)
    rep_goals = []
    for goal in team_goals:
        manager = goal.created_by
        for rep_id, target in rep_targets[(goal.team_id, goal.start)].items():
            rep_goals.append(
                Goal(
                    owner_kind=OwnerKind.REP,
                    rep_id=rep_id,
                    period_kind=PeriodKind.MONTH,
                    start=goal.start,
                    end=goal.end,
                    metric=Metric.REVENUE_WON,
                    target=target,
                    parent=goal,
                    created_by=manager,
                )
            )
    Goal.objects.bulk_create(rep_goals, batch_size=1000)
    result.counts["rep goals"] += len(rep_goals)

    # The current quarter (once per team, with the current month's goals).
    quarter_start, quarter_end = period_bounds(PeriodKind.QUARTER, today)
    current = [goal for goal in team_goals if goal.start == months[-1]]
    quarter_goals = []
    for goal in current:
        quarter_goals.append(
            Goal(
                owner_kind=OwnerKind.TEAM,
                team_id=goal.team_id,
                period_kind=PeriodKind.QUARTER,
                start=quarter_start,
                end=quarter_end,
                metric=Metric.REVENUE_WON,
                target=goal.target * 3,
                created_by=goal.created_by,
            )
        )
        rng = rngs[goal.team_id]
        for rep_id in rep_targets[(goal.team_id, goal.start)]:
            quarter_goals.append(
                Goal(
                    owner_kind=OwnerKind.REP,
                    rep_id=rep_id,
                    period_kind=PeriodKind.QUARTER,
                    start=quarter_start,
                    end=quarter_end,
                    metric=Metric.ACTIVITIES,
                    activity_kind=ActivityKind.CALL,
                    target=Decimal(rng.randrange(150, 301, 10)),
                    created_by=goal.created_by,
                )
            )
    Goal.objects.bulk_create(quarter_goals, batch_size=1000)
    result.counts["quarter goals"] += len(quarter_goals)

    year_start, year_end = period_bounds(PeriodKind.YEAR, today)
    company_exists = Goal.objects.filter(
        owner_kind=OwnerKind.COMPANY, metric=Metric.REVENUE_WON, start=year_start, end=year_end
    ).exists()
    if admin is not None and not company_exists:
        monthly = sum((goal.target for goal in current), Decimal(0))
        Goal.objects.create(
            owner_kind=OwnerKind.COMPANY,
            period_kind=PeriodKind.YEAR,
            start=year_start,
            end=year_end,
            metric=Metric.REVENUE_WON,
            target=monthly * 12,
            created_by=admin,
        )
        result.counts["company goals"] += 1

    # Revisions: a few past rep goals per team, revised mid-month with a reason.
    revisions = []
    revised_goals = []
    reasons = list(REVISION_COMMENTS)
    past = [goal for goal in rep_goals if goal.end < today]
    by_team: dict[int, list[Goal]] = defaultdict(list)
    for goal in past:
        by_team[goal.parent.team_id].append(goal)
    for team_id, goals in by_team.items():
        rng = rngs[team_id]
        for goal in rng.sample(goals, min(REVISED_PER_TEAM, len(goals))):
            reason = rng.choice(reasons)
            factor = Decimal("1.1") if reason == RevisionReason.PERFORMANCE else Decimal("0.9")
            new_target = _round(goal.target * factor)
            if new_target == goal.target:
                continue
            revisions.append(
                GoalRevision(
                    goal=goal,
                    old_target=goal.target,
                    new_target=new_target,
                    reason=reason,
                    comment=REVISION_COMMENTS[reason],
                    revised_by=goal.created_by,
                    revised_at=now,
                    effective_from=goal.start + timedelta(days=14),
                )
            )
            goal.target = new_target
            revised_goals.append(goal)
    GoalRevision.objects.bulk_create(revisions, batch_size=1000)
    Goal.objects.bulk_update(revised_goals, ["target"], batch_size=1000)
    result.counts["goal revisions"] += len(revisions)

    # Reviews: last month's worst missed rep goal in the first teams.
    last_month = months[-2]
    reviews = []
    for index, team in enumerate(team for team in team_list if members[team.pk]):
        if index >= REVIEWED_TEAMS:
            break
        missed = [
            (won.get((goal.rep_id, last_month), Decimal(0)) / goal.target, goal)
            for goal in rep_goals
            if goal.start == last_month and goal.parent.team_id == team.pk and goal.target
        ]
        missed = [pair for pair in missed if pair[0] < 1]
        if not missed:
            continue
        _, goal = min(missed, key=lambda pair: (pair[0], pair[1].rep_id))
        cause, findings, action = REVIEW_TEXTS[index % len(REVIEW_TEXTS)]
        reviews.append(
            GoalReview(
                goal=goal,
                cause=cause,
                findings=findings,
                corrective_action=action,
                action_owner_id=goal.rep_id,
                due_on=today + timedelta(days=14),
                created_by=goal.created_by,
                created_at=now,
            )
        )
    GoalReview.objects.bulk_create(reviews)
    result.counts["goal reviews"] += len(reviews)
    result.seconds = time.monotonic() - started
    return result
