"""Reads of the pipeline, always scoped to the user (accounts/access.py).

Every view, export, API and job gets leads, customers, estimates, deals and
activities from these functions; "not yours" and "not there" are both 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Q, QuerySet, Window

from accounts.access import get_or_404, scope_owned
from accounts.models import User
from leads.models import (
    MARKETING_STAGES,
    Activity,
    Customer,
    Deal,
    Estimate,
    ImportJob,
    Lead,
)

AnyUser = User | AnonymousUser

# How many rows of each history list a detail page shows (customer, deal).
HISTORY_CAP = 10


@dataclass
class Capped:
    """The first rows of a list and how many there are in all."""

    rows: list[Any]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def capped(queryset: QuerySet[Any], cap: int = HISTORY_CAP) -> Capped:
    """First ``cap`` rows plus the total in ONE query (COUNT(*) OVER () is taken before LIMIT)."""
    rows = list(queryset.annotate(total_rows=Window(Count("pk")))[:cap])
    return Capped(rows=rows, total=rows[0].total_rows if rows else 0)


def leads_for_user(*, user: AnyUser) -> QuerySet[Lead]:
    """Rep: own leads. Manager: their teams' leads and those handed to their teams.
    Marketing: marketing-stage and unassigned leads. Admin: all."""
    return scope_owned(
        Lead.objects.all(),
        user=user,
        owner_field="owner",
        team_field="team",
        marketing=Q(stage__in=MARKETING_STAGES) | Q(owner__isnull=True),
    )


def lead_get_for_user(*, user: AnyUser, pk: Any) -> Lead:
    return get_or_404(leads_for_user(user=user), pk=pk)


def customers_for_user(*, user: AnyUser) -> QuerySet[Customer]:
    """Customers owned by someone the user may see; marketing sees unowned ones."""
    return scope_owned(Customer.objects.all(), user=user, marketing=Q(owner__isnull=True))


def customer_get_for_user(*, user: AnyUser, pk: Any) -> Customer:
    return get_or_404(customers_for_user(user=user), pk=pk)


def estimates_for_user(*, user: AnyUser) -> QuerySet[Estimate]:
    return scope_owned(Estimate.objects.all(), user=user)


def estimate_get_for_user(*, user: AnyUser, pk: Any) -> Estimate:
    return get_or_404(estimates_for_user(user=user), pk=pk)


def deals_for_user(*, user: AnyUser) -> QuerySet[Deal]:
    return scope_owned(Deal.objects.all(), user=user)


def deal_get_for_user(*, user: AnyUser, pk: Any) -> Deal:
    return get_or_404(deals_for_user(user=user), pk=pk)


def activities_for_user(*, user: AnyUser) -> QuerySet[Activity]:
    """Activities of people the user may see; marketing sees the ones they logged."""
    marketing = Q(owner=user.pk) if user.is_authenticated else None
    return scope_owned(Activity.objects.all(), user=user, marketing=marketing)


def activity_get_for_user(*, user: AnyUser, pk: Any) -> Activity:
    return get_or_404(activities_for_user(user=user), pk=pk)


def imports_for_user(*, user: AnyUser) -> QuerySet[ImportJob]:
    """An import is seen by whoever uploaded it, and by admins."""
    if not (user.is_authenticated and user.is_active):
        return ImportJob.objects.none()
    if user.role == "admin":
        return ImportJob.objects.all()
    return ImportJob.objects.filter(uploaded_by=user)


def import_get_for_user(*, user: AnyUser, pk: Any) -> ImportJob:
    return get_or_404(imports_for_user(user=user), pk=pk)
