"""Writes of goals: create, revise (with the reason kept), split to reps.

Each service validates, saves and records history in one transaction; a refused
change raises ValidationError with a message for the user and saves nothing.

Who may set a goal: an admin any goal; a manager the goals of the teams they
manage and of those teams' members. Reps and marketing set none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.access import teams_for_user, users_for_user
from accounts.models import ProductLine, Role, Team, Territory, User
from goals.models import Goal, GoalRevision, Metric, OwnerKind, PeriodKind, RevisionReason
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
