"""Who may see what: the one place where querysets are scoped to a user.

Every view, export, API endpoint, background email and job gets its objects
through these functions (or selectors built on them), never through a bare
``Model.objects`` query. The rules (DESIGN.md, "Visibility"):

- a rep sees only what they own;
- a manager sees what is owned by the members of the teams they manage (and
  their own);
- marketing sees the marketing-stage and unassigned leads (the lead selector
  passes that condition as ``marketing``); nothing owned by reps otherwise;
- an admin sees everything.

Inactive or anonymous users see nothing. "Not yours" and "not there" are the
same to a caller: ``get_or_404`` raises Http404 for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.http import Http404

from accounts.models import Role, Team, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

M = TypeVar("M", bound=Model)


def _can_see_anything(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active)


def teams_for_user(*, user: User | AnonymousUser) -> QuerySet[Team]:
    """Teams whose figures the user may see: admin all, managers theirs, others their own."""
    teams = Team.objects.all()
    if not _can_see_anything(user):
        return teams.none()
    if user.role == Role.ADMIN:
        return teams
    if user.role == Role.MANAGER:
        return teams.filter(managers=user)
    return teams.filter(pk=user.team_id) if user.team_id else teams.none()


def users_for_user(*, user: User | AnonymousUser) -> QuerySet[User]:
    """People whose own data (leads, deals, goals…) the user may see, themselves included."""
    users = User.objects.all()
    if not _can_see_anything(user):
        return users.none()
    if user.role == Role.ADMIN:
        return users
    if user.role == Role.MANAGER:
        return users.filter(Q(pk=user.pk) | Q(team__managers=user)).distinct()
    return users.filter(pk=user.pk)


def scope_owned(
    queryset: QuerySet[M],
    *,
    user: User | AnonymousUser,
    owner_field: str = "owner",
    team_field: str | None = None,
    marketing: Q | None = None,
) -> QuerySet[M]:
    """Narrow ``queryset`` (of objects with an owner) to what ``user`` may see.

    ``team_field`` names a team the object was handed to before it has an
    owner (leads): a manager of that team sees it too. ``marketing`` is the
    condition under which marketing sees an object (for leads: unassigned or
    in a marketing stage); without it marketing sees none.
    For managers the ids of their teams and members are read first (one small
    query), see ``managed_team_and_member_ids``.
    """
    if not _can_see_anything(user):
        return queryset.none()
    if user.role == Role.ADMIN:
        return queryset
    if user.role == Role.MANAGER:
        team_ids, member_ids = managed_team_and_member_ids(user)
        visible = Q(**{f"{owner_field}__in": [user.pk, *member_ids]})
        if team_field and team_ids:
            visible |= Q(**{f"{owner_field}__isnull": True, f"{team_field}__in": team_ids})
        return queryset.filter(visible)
    if user.role == Role.MARKETING:
        return queryset.filter(marketing) if marketing is not None else queryset.none()
    return queryset.filter(**{owner_field: user.pk})


def managed_team_and_member_ids(user: User) -> tuple[list[int], list[int]]:
    """The ids of a manager's teams and of their members, in one query per request.

    Literal id lists (rather than subqueries ORed together, which PostgreSQL
    can only run as a filter over every row) let the owner and team indexes of
    a million-row table do the work; a manager's teams are small. The ids are
    kept on the user object, which lives as long as the request (or the job
    that loaded it), so a page that scopes five lists reads them once.
    """
    cached: tuple[list[int], list[int]] | None = getattr(user, "_managed_ids", None)
    if cached is None:
        rows = list(Team.objects.filter(managers=user).values_list("pk", "members__pk"))
        team_ids = sorted({team_id for team_id, _ in rows})
        member_ids = sorted({member_id for _, member_id in rows if member_id is not None})
        cached = (team_ids, member_ids)
        user._managed_ids = cached  # type: ignore[attr-defined]
    return cached


def get_or_404(queryset: QuerySet[M], **lookup: Any) -> M:
    """One object from an already scoped queryset; not visible and not there are both 404."""
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def user_get_for_user(*, user: User | AnonymousUser, pk: Any) -> User:
    return get_or_404(users_for_user(user=user), pk=pk)


def team_get_for_user(*, user: User | AnonymousUser, pk: Any) -> Team:
    return get_or_404(teams_for_user(user=user), pk=pk)
