"""Writes of goals: create, revise (with the reason kept), split to reps, reviews.

Each service validates, saves and records history in one transaction; a refused
change raises ValidationError with a message for the user and saves nothing.

Who may set a goal: an admin any goal; a manager the goals of the teams they
manage and of those teams' members. Reps and marketing set none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.access import teams_for_user, users_for_user
from accounts.models import ProductLine, Role, Team, Territory, User
from goals.kpis import ACTIVITY_COLUMNS
from goals.models import (
    DailyRepFact,
    Goal,
    GoalReview,
    GoalRevision,
    Metric,
    OwnerKind,
    PeriodKind,
    ReviewCause,
    ReviewStatus,
    RevisionReason,
)
from goals.selectors import goal_target_on
from leads.models import ActivityKind

NPS_RANGE = (Decimal(-100), Decimal(100))


def period_bounds(kind: str, day: date) -> tuple[date, date]:
    """The month, quarter or year containing ``day``: (first day, last day)."""
    if kind == PeriodKind.MONTH:
        start = day.replace(day=1)
        months = 1
    elif kind == PeriodKind.QUARTER:
        start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        months = 3
    elif kind == PeriodKind.YEAR:
        start = day.replace(month=1, day=1)
        months = 12
    else:
        raise ValueError(f"a {kind} period has no fixed bounds")
    month_index = start.month - 1 + months
    after = date(start.year + month_index // 12, month_index % 12 + 1, 1)
    return start, after - timedelta(days=1)


def _check_target(metric: str, target: Decimal | None, field: str = "target") -> Decimal:
    if target is None:
        raise ValidationError({field: _("Give a target.")})
    target = Decimal(target)
    if metric == Metric.NPS:
        if not NPS_RANGE[0] <= target <= NPS_RANGE[1]:
            raise ValidationError({field: _("An NPS target lies between -100 and 100.")})
    elif metric == Metric.CSAT:
        if not 0 <= target <= 100:
            raise ValidationError({field: _("A CSAT target lies between 0 and 100.")})
    elif target < 0:
        raise ValidationError({field: _("The target cannot be negative.")})
    if metric in (Metric.DEALS_WON, Metric.NEW_LEADS, Metric.ACTIVITIES) and target != int(target):
        raise ValidationError({field: _("This target is a count: give a whole number.")})
    return target


def _check_may_set(actor: User, owner_kind: str, rep: User | None, team: Team | None) -> None:
    if actor.role == Role.ADMIN and actor.is_active:
        return
    if actor.role == Role.MANAGER and actor.is_active:
        if owner_kind == OwnerKind.TEAM and team is not None:
            allowed = teams_for_user(user=actor).filter(pk=team.pk).exists()
        elif owner_kind == OwnerKind.REP and rep is not None:
            allowed = users_for_user(user=actor).filter(pk=rep.pk).exists()
        else:
            allowed = False
        if allowed:
            return
    raise ValidationError(_("You cannot set goals for them."))


@transaction.atomic
def goal_create(
    *,
    actor: User,
    owner_kind: str,
    metric: str,
    period_kind: str,
    start: date,
    end: date | None = None,
    target: Decimal,
    rep: User | None = None,
    team: Team | None = None,
    activity_kind: str = "",
    product_line: ProductLine | None = None,
    territory: Territory | None = None,
    parent: Goal | None = None,
) -> Goal:
    """Create a goal. For a month, quarter or year give any day of it as ``start``:
    the period's bounds are derived; a custom period needs ``end``."""
    if owner_kind not in OwnerKind.values:
        raise ValidationError({"owner_kind": _("Choose rep, team or company.")})
    if metric not in Metric.values:
        raise ValidationError({"metric": _("Choose a metric from the list.")})
    if period_kind not in PeriodKind.values:
        raise ValidationError({"period_kind": _("Choose a period from the list.")})
    if owner_kind == OwnerKind.REP:
        if rep is None:
            raise ValidationError({"rep": _("Choose the sales rep.")})
        team = None
    elif owner_kind == OwnerKind.TEAM:
        if team is None:
            raise ValidationError({"team": _("Choose the team.")})
        rep = None
    else:
        rep = team = None
    if period_kind == PeriodKind.CUSTOM:
        if end is None:
            raise ValidationError({"end": _("Give the last day of the period.")})
        if end < start:
            raise ValidationError({"end": _("The period ends before it starts.")})
    else:
        start, end = period_bounds(period_kind, start)
    if activity_kind and metric != Metric.ACTIVITIES:
        raise ValidationError(
            {"activity_kind": _("An activity type goes with the activities metric only.")}
        )
    if activity_kind and activity_kind not in ActivityKind.values:
        raise ValidationError({"activity_kind": _("Choose an activity type from the list.")})
    target = _check_target(metric, target)
    _check_may_set(actor, owner_kind, rep, team)
    goal = Goal(
        owner_kind=owner_kind,
        rep=rep,
        team=team,
        period_kind=period_kind,
        start=start,
        end=end,
        metric=metric,
        activity_kind=activity_kind,
        product_line=product_line,
        territory=territory,
        target=target,
        parent=parent,
        created_by=actor,
    )
    goal.full_clean()
    goal.save()
    return goal


@transaction.atomic
def goal_revise(
    *,
    goal: Goal,
    actor: User,
    new_target: Decimal,
    reason: str,
    effective_from: date,
    comment: str = "",
    today: date | None = None,
) -> GoalRevision:
    """Change a goal's target from ``effective_from`` on, keeping why (a revision).

    The revision may reach back into the period (the economy turned on the 1st)
    but not into the future: ``goal.target`` is always the target in force
    today. Before the period starts, a revision counts from its first day.
    Not idempotent by design: each call is one more recorded revision.
    """
    today = today or timezone.localdate()
    goal = Goal.objects.select_for_update().get(pk=goal.pk)
    _check_may_set(actor, goal.owner_kind, goal.rep, goal.team)
    if reason not in RevisionReason.values:
        raise ValidationError({"reason": _("Choose the reason for the revision.")})
    if reason == RevisionReason.OTHER and not comment.strip():
        raise ValidationError({"comment": _("Say what the other reason is.")})
    new_target = _check_target(goal.metric, new_target, "new_target")
    latest = min(goal.end, max(today, goal.start))
    if not goal.start <= effective_from <= latest:
        raise ValidationError(
            {
                "effective_from": _("The revision counts from a day between %(start)s and %(end)s.")
                % {"start": goal.start.isoformat(), "end": latest.isoformat()}
            }
        )
    revisions = list(goal.revisions.all())
    old_target = goal_target_on(goal, effective_from, revisions)
    if new_target == old_target:
        raise ValidationError({"new_target": _("That is already the target on that day.")})
    revision = GoalRevision(
        goal=goal,
        old_target=old_target,
        new_target=new_target,
        reason=reason,
        comment=comment.strip(),
        revised_by=actor,
        revised_at=timezone.now(),
        effective_from=effective_from,
    )
    revision.full_clean()
    revision.save()
    goal.target = goal_target_on(
        goal, min(goal.end, max(today, goal.start)), [*revisions, revision]
    )
    goal.save(update_fields=["target"])
    return revision


@transaction.atomic
def goal_split(*, goal: Goal, actor: User, targets: Mapping[User, Decimal]) -> list[Goal]:
    """Split a team or company goal into rep goals (same metric, period and narrowing).

    Who may set the goal may split it (a company goal: admins). A team goal
    splits among that team's members. The shares need not add up to
    the whole (a manager may over-allocate on purpose). Safe to repeat: a rep
    who already has a goal split from this one is refused with a message.
    """
    if goal.owner_kind == OwnerKind.REP:
        raise ValidationError(_("A rep's goal cannot be split further."))
    # Whoever splits a goal must be allowed to set the goal itself.
    _check_may_set(actor, goal.owner_kind, goal.rep, goal.team)
    if not targets:
        raise ValidationError(_("Give at least one rep a share."))
    already = set(goal.splits.values_list("rep_id", flat=True))
    created = []
    for rep, target in targets.items():
        if rep.pk in already:
            raise ValidationError(
                _("%(name)s already has a share of this goal: revise it instead.") % {"name": rep}
            )
        if goal.owner_kind == OwnerKind.TEAM and rep.team_id != goal.team_id:
            raise ValidationError(
                _("%(name)s is not in team %(team)s.") % {"name": rep, "team": goal.team}
            )
        if rep.role not in (Role.REP, Role.MANAGER) or not rep.is_active:
            raise ValidationError(_("%(name)s cannot have a sales goal.") % {"name": rep})
        created.append(
            goal_create(
                actor=actor,
                owner_kind=OwnerKind.REP,
                rep=rep,
                metric=goal.metric,
                period_kind=goal.period_kind,
                start=goal.start,
                end=goal.end,
                target=target,
                activity_kind=goal.activity_kind,
                product_line=goal.product_line,
                territory=goal.territory,
                parent=goal,
            )
        )
    return created


def goal_may_set(*, actor: User, goal: Goal) -> bool:
    """Whether ``actor`` may revise, split and review ``goal`` (the rule of ``goal_create``)."""
    try:
        _check_may_set(actor, goal.owner_kind, goal.rep, goal.team)
    except ValidationError:
        return False
    return True


# --- Splitting suggestions ----------------------------------------------------------------

SPLIT_EVENLY = "even"
SPLIT_BY_SHARE = "share"
# Rates are not divided: each rep of a team aims at the same CSAT or NPS as the team.
RATE_METRICS = (Metric.CSAT, Metric.NPS)
MONEY_METRICS = (Metric.REVENUE_WON, Metric.ESTIMATE_VALUE)
CENT = Decimal("0.01")


def metric_quantum(metric: str) -> Decimal:
    """The unit a target of the metric is rounded to: cents for money, whole units for counts."""
    return CENT if metric in MONEY_METRICS else Decimal(1)


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before [start, end]."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def _metric_sum(metric: str, activity_kind: str) -> Sum:
    """SUM over facts of the additive column(s) behind a count or money metric."""
    columns = {
        Metric.REVENUE_WON: ["revenue_won"],
        Metric.DEALS_WON: ["deals_won"],
        Metric.ESTIMATE_VALUE: ["estimate_value_issued"],
        Metric.NEW_LEADS: ["leads_created"],
        Metric.ACTIVITIES: [ACTIVITY_COLUMNS[activity_kind]]
        if activity_kind
        else list(ACTIVITY_COLUMNS.values()),
    }[metric]
    expression = F(columns[0])
    for column in columns[1:]:
        expression = expression + F(column)
    return Sum(expression)


def _history_by_rep(goal: Goal, reps: Sequence[User]) -> dict[int, Decimal]:
    """Each rep's result on the goal's metric in the previous period of the same length."""
    start, end = previous_period(goal.start, goal.end)
    facts = DailyRepFact.objects.filter(
        rep__in=[rep.pk for rep in reps], day__gte=start, day__lte=end
    )
    if goal.product_line_id is not None:
        facts = facts.filter(product_line=goal.product_line_id)
    if goal.territory_id is not None:
        facts = facts.filter(territory=goal.territory_id)
    rows = facts.values("rep").annotate(value=_metric_sum(goal.metric, goal.activity_kind))
    return {row["rep"]: Decimal(row["value"] or 0) for row in rows}


def goal_split_suggestion(
    *, goal: Goal, reps: Sequence[User], method: str = SPLIT_EVENLY
) -> dict[int, Decimal]:
    """Suggested rep targets (rep id → target) for splitting ``goal`` among ``reps``.

    - ``even``: the target divided equally;
    - ``share``: in proportion to each rep's result on the same metric (and
      product line, territory) in the previous period of the same length. A rep
      with no history there (a newcomer) gets what an even split would give them,
      so they are neither left at 0 nor given a share of others' history; the rest
      is divided among the reps with history by their share. Nobody with
      history: an even split.

    Targets are rounded down to cents (money) or whole units (counts), and the
    remainder goes to the largest share, so the targets add up to the goal's
    target exactly. Rate metrics (CSAT, NPS) are not divided: each rep gets the
    goal's own target. Reads only (one query for ``share``): safe to repeat.
    """
    if not reps:
        return {}
    target = Decimal(goal.target)
    if goal.metric in RATE_METRICS:
        return {rep.pk: target for rep in reps}
    if method not in (SPLIT_EVENLY, SPLIT_BY_SHARE):
        raise ValidationError(_("Choose how to split: evenly or by last period's share."))
    even = target / len(reps)
    raw: dict[int, Decimal] = {rep.pk: even for rep in reps}
    if method == SPLIT_BY_SHARE:
        history = _history_by_rep(goal, reps)
        with_history = {pk: value for pk, value in history.items() if value > 0 and pk in raw}
        if with_history:
            newcomers = [pk for pk in raw if pk not in with_history]
            rest = target - even * len(newcomers)
            total = sum(with_history.values(), Decimal(0))
            for pk in raw:
                raw[pk] = rest * with_history[pk] / total if pk in with_history else even
    quantum = metric_quantum(goal.metric)
    rounded = {pk: value.quantize(quantum, rounding=ROUND_DOWN) for pk, value in raw.items()}
    remainder = target - sum(rounded.values(), Decimal(0))
    # The first of the largest raw shares (reps in the order given) takes the remainder.
    largest = max(raw, key=lambda pk: raw[pk])
    rounded[largest] += remainder
    return rounded


# --- Reviews of missed or at-risk goals -----------------------------------------------------


@transaction.atomic
def goal_review_create(
    *,
    goal: Goal,
    actor: User,
    cause: str,
    corrective_action: str,
    action_owner: User,
    due_on: date,
    findings: str = "",
    today: date | None = None,
) -> GoalReview:
    """Record why a goal was missed (or is at risk) and who does what by when.

    Who may set the goal may review it; the action owner is someone the actor
    may see. Not idempotent by design: each call is one more review.
    """
    today = today or timezone.localdate()
    if not goal_may_set(actor=actor, goal=goal):
        raise ValidationError(_("You cannot review this goal."))
    if cause not in ReviewCause.values:
        raise ValidationError({"cause": _("Choose the cause from the list.")})
    if not corrective_action.strip():
        raise ValidationError({"corrective_action": _("Say what will be done about it.")})
    if (
        action_owner is None
        or not action_owner.is_active
        or not users_for_user(user=actor).filter(pk=action_owner.pk).exists()
    ):
        raise ValidationError({"action_owner": _("Choose someone from your team.")})
    if due_on is None or due_on < today:
        raise ValidationError({"due_on": _("The due date cannot be in the past.")})
    review = GoalReview(
        goal=goal,
        cause=cause,
        findings=findings.strip(),
        corrective_action=corrective_action.strip(),
        action_owner=action_owner,
        due_on=due_on,
        created_by=actor,
        created_at=timezone.now(),
    )
    review.full_clean()
    review.save()
    return review


@transaction.atomic
def goal_review_done(*, review: GoalReview, actor: User) -> GoalReview:
    """Mark a review's corrective action done. Who may set the goal or the action
    owner may. Safe to repeat: a review already done is left as it is."""
    review = GoalReview.objects.select_for_update().select_related("goal").get(pk=review.pk)
    if actor.pk != review.action_owner_id and not goal_may_set(actor=actor, goal=review.goal):
        raise ValidationError(_("You cannot close this review."))
    if review.status == ReviewStatus.DONE:
        return review
    review.status = ReviewStatus.DONE
    review.done_at = timezone.now()
    review.save(update_fields=["status", "done_at"])
    return review
