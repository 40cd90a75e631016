"""Automatic lead routing: which rep of which team gets a lead nobody owns.

Rules (``RoutingRule``, edited by an admin) are tried by priority, then pk. A
rule matches when each condition it sets matches the lead: its territory, its
source, and its product line being one of the lead's lines. The first matching
rule whose team has an eligible rep picks one:

- eligible: an active user with the rep role in the rule's team, not at
  capacity. ``User.lead_capacity`` caps the leads *given* to a rep in the last
  30 days: leads the rep owns now that were assigned to them (an OWNER event)
  in that window by routing or by someone else. The OWNER events are the
  record of assignment (a lead created long ago but routed today counts; a
  lead the rep typed in themselves does not, nor one since reassigned away);
  ``Lead.created_at`` would get both wrong.
- round robin: the next eligible rep (by pk) after the rule's ``last_assigned``,
  wrapping around; the rule remembers who it picked.
- least loaded: the eligible rep with the fewest open leads (ties: lowest pk).

When the rule's team has nobody eligible, the next matching rule is tried; when
nothing matches, the lead stays unassigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from accounts.models import Role, User
from leads.models import (
    OPEN_STAGES,
    Lead,
    LeadEvent,
    LeadEventKind,
    RoutingRule,
    RoutingStrategy,
)

CAPACITY_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class RoutingDecision:
    rule: RoutingRule
    rep: User
    explanation: str


def _matching_rules(lead: Lead) -> list[RoutingRule]:
    """Active rules of active teams whose set conditions all match, locked, in order.

    Locking them (FOR UPDATE OF the rule rows, always in the same order) serialises
    routings through the same rules: a round-robin pointer is read and moved by one
    routing at a time, and the loads and capacities read next include the lead the
    previous routing just assigned.
    """
    lead_lines = Lead.product_lines.through.objects.filter(lead_id=lead.pk).values("productline_id")
    return list(
        RoutingRule.objects.filter(is_active=True, team__is_active=True)
        .filter(Q(territory__isnull=True) | Q(territory_id=lead.territory_id))
        .filter(Q(source="") | Q(source=lead.source))
        .filter(Q(product_line__isnull=True) | Q(product_line_id__in=lead_lines))
        .select_related("team")
        .select_for_update(of=("self",))
        .order_by("priority", "pk")
    )


def _candidates(rules: list[RoutingRule], *, now: datetime) -> list[User]:
    """Active reps of the rules' teams, by pk, with their recent assignments and open leads.

    One query whatever the number of reps: both numbers are correlated subqueries.
    The 30-day count only runs for reps with a capacity, and it looks only at their
    leads updated in the window (an assignment updates the lead, so nothing assigned
    in the window is missed) before probing the lead's events.
    """
    since = now - CAPACITY_WINDOW
    assigned_recently = (
        Lead.objects.filter(owner_id=OuterRef("pk"), updated_at__gte=since)
        .filter(
            Exists(
                LeadEvent.objects.filter(
                    lead_id=OuterRef("pk"), kind=LeadEventKind.OWNER, created_at__gte=since
                )
                # A lead the rep took themselves is not one given to them.
                .exclude(actor_id=OuterRef(OuterRef("pk")))
            )
        )
        .order_by()
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    open_leads = (
        Lead.objects.filter(owner_id=OuterRef("pk"), stage__in=OPEN_STAGES)
        .order_by()
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    needs_load = any(rule.strategy == RoutingStrategy.LEAST_LOADED for rule in rules)
    reps = User.objects.filter(
        team_id__in={rule.team_id for rule in rules}, role=Role.REP, is_active=True
    ).select_related("team")
    return list(
        reps.annotate(
            assigned_recently=Case(
                When(
                    lead_capacity__isnull=False,
                    then=Coalesce(Subquery(assigned_recently, output_field=IntegerField()), 0),
                ),
                default=Value(0),
            ),
            open_leads=(
                Coalesce(Subquery(open_leads, output_field=IntegerField()), 0)
                if needs_load
                else Value(0)
            ),
        ).order_by("pk")
    )


def _has_room(rep: User) -> bool:
    return rep.lead_capacity is None or rep.assigned_recently < rep.lead_capacity


def _pick(rule: RoutingRule, eligible: list[User]) -> User:
    if rule.strategy == RoutingStrategy.LEAST_LOADED:
        return min(eligible, key=lambda rep: (rep.open_leads, rep.pk))
    after = rule.last_assigned_id or 0
    return next((rep for rep in eligible if rep.pk > after), eligible[0])


def _explain(rule: RoutingRule) -> str:
    return (
        _('Rule "%(rule)s" (%(strategy)s in %(team)s)')
        % {
            "rule": rule.name,
            "strategy": RoutingStrategy(rule.strategy).label.lower(),
            "team": rule.team.name,
        }
    )[:200]


@transaction.atomic
def lead_route(*, lead: Lead, now: datetime) -> RoutingDecision | None:
    """Give an unowned lead to a rep by the routing rules; None when no rule can.

    Queries, whatever the number of rules and reps: 1 SELECT … FOR UPDATE of the
    matching rules; 1 SELECT of the candidate reps with their loads (skipped when no
    rule matches); for round robin 1 UPDATE of the rule's pointer; then
    ``lead_assign`` (lock, update and OWNER event of the lead; the email is queued
    after commit). Safe to repeat on an owned lead: it is left as it is.
    """
    from leads.services import lead_assign

    if lead.owner_id is not None:
        return None
    rules = _matching_rules(lead)
    if not rules:
        return None
    reps = _candidates(rules, now=now)
    for rule in rules:
        eligible = [rep for rep in reps if rep.team_id == rule.team_id and _has_room(rep)]
        if not eligible:
            continue
        rep = _pick(rule, eligible)
        if rule.strategy == RoutingStrategy.ROUND_ROBIN:
            RoutingRule.objects.filter(pk=rule.pk).update(last_assigned=rep)
            rule.last_assigned = rep
        explanation = _explain(rule)
        lead_assign(lead=lead, owner=rep, actor=None, rule=explanation)
        lead.owner, lead.team, lead.assigned_by_rule = rep, rep.team, explanation
        return RoutingDecision(rule=rule, rep=rep, explanation=explanation)
    return None
