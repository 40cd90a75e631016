"""Reads for the accounts pages, always through the access rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q

from accounts.access import teams_for_user
from accounts.models import ProductLine, Role, Team, Territory, User


@dataclass
class HomeSummary:
    teams: list[Team] = field(default_factory=list)
    territories: list[Territory] = field(default_factory=list)
    product_lines: list[ProductLine] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def home_for_user(*, user: User) -> HomeSummary:
    """What the home page shows: the user's team(s) with their people, and the organisation.

    A fixed number of queries whatever the size of the teams (members are prefetched).
    """
    members = User.objects.filter(is_active=True).order_by("display_name")
    teams = list(
        teams_for_user(user=user)
        .filter(is_active=True)
        .prefetch_related(
            Prefetch("members", queryset=members),
            Prefetch("managers", queryset=User.objects.order_by("display_name")),
        )
        .order_by("name")
    )
    summary = HomeSummary(
        teams=teams,
        territories=list(user.territories.order_by("name")),
        product_lines=list(ProductLine.objects.filter(is_active=True).order_by("name")),
    )
    if user.role == Role.ADMIN:
        summary.counts = User.objects.aggregate(
            users=Count("pk", filter=Q(is_active=True)),
            reps=Count("pk", filter=Q(is_active=True, role=Role.REP)),
            managers=Count("pk", filter=Q(is_active=True, role=Role.MANAGER)),
        )
        summary.counts["teams"] = len(teams)
    return summary
