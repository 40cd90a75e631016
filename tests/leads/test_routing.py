"""Automatic lead routing by the admin's rules (leads/routing.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, Team, User
from leads.models import (
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    RoutingRule,
    RoutingStrategy,
    Stage,
)
from leads.routing import lead_route
from leads.services import lead_assign, lead_create
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TeamFactory, TerritoryFactory, UserFactory
from tests.factories_leads import LeadFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def at_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def rule(team: Team, **kwargs: Any) -> RoutingRule:
    return RoutingRule.objects.create(
        name=kwargs.pop("name", f"To {team.name}"), team=team, **kwargs
    )


def unrouted(**kwargs: Any) -> Lead:
    lines = kwargs.pop("product_lines", [])
    lead = LeadFactory(owner=None, team=None, stage=Stage.SQL, **kwargs)
    if lines:
        lead.product_lines.set(lines)
    return lead


def routed_to(**kwargs: Any) -> User | None:
    lead = unrouted(**kwargs)
    lead_route(lead=lead, now=NOW)
    lead.refresh_from_db()
    return lead.owner


# --- Which rule ---------------------------------------------------------------------


def test_territory_condition(cast: Cast) -> None:
    stockholm, oslo = TerritoryFactory(), TerritoryFactory()
    rule(cast.other_team, territory=stockholm, priority=1)
    rule(cast.team, priority=2)

    assert routed_to(territory=stockholm) == cast.other_rep
    assert routed_to(territory=oslo) in (cast.rep, cast.teammate)
    assert routed_to() in (cast.rep, cast.teammate)


def test_product_line_condition_matches_any_line_of_the_lead(cast: Cast) -> None:
    boxes, cables, lamps = ProductLineFactory(), ProductLineFactory(), ProductLineFactory()
    rule(cast.other_team, product_line=boxes, priority=1)
    rule(cast.team, priority=2)

    assert routed_to(product_lines=[cables, boxes]) == cast.other_rep
    assert routed_to(product_lines=[cables, lamps]) in (cast.rep, cast.teammate)
    assert routed_to() in (cast.rep, cast.teammate)


def test_source_condition(cast: Cast) -> None:
    rule(cast.other_team, source=LeadSource.TRADE_SHOW, priority=1)
    rule(cast.team, priority=2)

    assert routed_to(source=LeadSource.TRADE_SHOW) == cast.other_rep
    assert routed_to(source=LeadSource.WEBINAR) in (cast.rep, cast.teammate)


def test_every_set_condition_must_match(cast: Cast) -> None:
    stockholm = TerritoryFactory()
    boxes = ProductLineFactory()
    rule(
        cast.other_team,
        territory=stockholm,
        product_line=boxes,
        source=LeadSource.REFERRAL,
        priority=1,
    )
    rule(cast.team, priority=2)
    full = {"territory": stockholm, "product_lines": [boxes], "source": LeadSource.REFERRAL}

    assert routed_to(**full) == cast.other_rep
    assert routed_to(**{**full, "territory": None}) != cast.other_rep
    assert routed_to(**{**full, "product_lines": []}) != cast.other_rep
    assert routed_to(**{**full, "source": LeadSource.WEBINAR}) != cast.other_rep


def test_priority_then_creation_order(cast: Cast) -> None:
    rule(cast.team, priority=20)
    rule(cast.other_team, priority=10)
    assert routed_to() == cast.other_rep

    RoutingRule.objects.all().delete()
    rule(cast.other_team, priority=5)
    rule(cast.team, priority=5)
    assert routed_to() == cast.other_rep


def test_inactive_rules_and_teams_are_skipped(cast: Cast) -> None:
    rule(cast.other_team, priority=1, is_active=False)
    closed_team = TeamFactory(is_active=False)
    UserFactory(team=closed_team)
    rule(closed_team, priority=2)
    rule(cast.team, priority=3)

    assert routed_to() in (cast.rep, cast.teammate)


def test_no_match_leaves_the_lead_unassigned(cast: Cast) -> None:
    rule(cast.team, source=LeadSource.TRADE_SHOW)
    lead = unrouted(source=LeadSource.WEBINAR)

    assert lead_route(lead=lead, now=NOW) is None
    lead.refresh_from_db()
    assert (lead.owner, lead.assigned_by_rule) == (None, "")
    assert not lead.events.filter(kind=LeadEventKind.OWNER).exists()
    assert RoutingRule.objects.get().last_assigned is None


def test_no_rules_at_all(cast: Cast) -> None:
    assert routed_to() is None


# --- Which rep ----------------------------------------------------------------------


def test_round_robin_goes_round_and_wraps(cast: Cast) -> None:
    routing = rule(cast.team, strategy=RoutingStrategy.ROUND_ROBIN)

    assert [routed_to() for _ in range(3)] == [cast.rep, cast.teammate, cast.rep]
    routing.refresh_from_db()
    assert routing.last_assigned == cast.rep

    newcomer = UserFactory(team=cast.team)  # joins at the end of the order (highest pk)
    assert [routed_to() for _ in range(3)] == [cast.teammate, newcomer, cast.rep]


def test_round_robin_pointer_on_a_rep_who_left(cast: Cast) -> None:
    third = UserFactory(team=cast.team)
    routing = rule(cast.team, strategy=RoutingStrategy.ROUND_ROBIN, last_assigned=cast.teammate)
    cast.teammate.is_active = False
    cast.teammate.save()

    # Bob is gone: the next one after him in the order still comes next.
    assert routed_to() == third
    routing.refresh_from_db()
    assert routing.last_assigned == third


def test_round_robin_pointers_are_per_rule(cast: Cast) -> None:
    boxes = ProductLineFactory()
    rule(cast.team, product_line=boxes, priority=1)
    rule(cast.team, priority=2)

    assert routed_to(product_lines=[boxes]) == cast.rep
    assert routed_to() == cast.rep
    assert routed_to(product_lines=[boxes]) == cast.teammate


def test_least_loaded_picks_the_rep_with_fewest_open_leads(cast: Cast) -> None:
    rule(cast.team, strategy=RoutingStrategy.LEAST_LOADED)
    LeadFactory.create_batch(2, owner=cast.rep, stage=Stage.SQL)
    LeadFactory(owner=cast.teammate, stage=Stage.MQL)
    # Closed leads are no load.
    LeadFactory.create_batch(3, owner=cast.teammate, stage=Stage.WON)
    LeadFactory.create_batch(3, owner=cast.teammate, stage=Stage.LOST, lost_reason="price")

    assert routed_to() == cast.teammate  # 1 open against 2
    assert routed_to() == cast.rep  # 2 each now: the tie goes to the lower pk
    assert routed_to() == cast.teammate
    assert RoutingRule.objects.get().last_assigned is None


def test_only_active_reps_of_the_team(cast: Cast) -> None:
    rule(cast.team, strategy=RoutingStrategy.LEAST_LOADED)
    cast.rep.is_active = False
    cast.rep.save()
    UserFactory(team=cast.team, role=Role.MANAGER)  # not a rep
    UserFactory(team=cast.team, role=Role.MARKETING)
    LeadFactory.create_batch(5, owner=cast.teammate, stage=Stage.SQL)

    assert [routed_to() for _ in range(2)] == [cast.teammate, cast.teammate]


def test_rep_at_capacity_is_skipped_until_the_window_passes(cast: Cast) -> None:
    cast.rep.lead_capacity = 1
    cast.rep.save()
    rule(cast.team)

    assert [routed_to() for _ in range(3)] == [cast.rep, cast.teammate, cast.teammate]

    with time_machine.travel(NOW + dt.timedelta(days=31), tick=False):
        lead = unrouted()
        lead_route(lead=lead, now=NOW + dt.timedelta(days=31))
        lead.refresh_from_db()
    assert lead.owner == cast.rep


def test_capacity_counts_leads_given_not_leads_taken(cast: Cast) -> None:
    cast.rep.lead_capacity = 2
    cast.rep.save()
    rule(cast.team, strategy=RoutingStrategy.LEAST_LOADED)
    LeadFactory.create_batch(3, owner=cast.teammate, stage=Stage.SQL)

    # Leads Alice typed in herself do not fill her capacity…
    for name in ("Own 1", "Own 2"):
        lead_create(actor=cast.rep, source=LeadSource.NETWORKING, contact_name=name, now=NOW)
    # …one her manager gave her does, as does an old lead routed to her today…
    given = LeadFactory(owner=None, team=None, stage=Stage.SQL)
    lead_assign(lead=given, owner=cast.rep, actor=cast.manager)
    with time_machine.travel(NOW - dt.timedelta(days=200), tick=False):
        old = unrouted()
    lead_route(lead=old, now=NOW)
    old.refresh_from_db()
    assert old.owner == cast.rep  # 3 open leads against Bob's 3: the lower pk
    # …and so she is full (2 given in 30 days), though Bob has more open leads.
    assert routed_to() == cast.teammate


def test_reassigned_away_leads_do_not_count(cast: Cast) -> None:
    cast.rep.lead_capacity = 1
    cast.rep.save()
    cast.teammate.lead_capacity = 0  # Alice is the only one who can get leads
    cast.teammate.save()
    rule(cast.team)
    lead = unrouted()
    lead_route(lead=lead, now=NOW)
    lead.refresh_from_db()
    assert lead.owner == cast.rep
    assert routed_to() is None  # Alice is full

    lead_assign(lead=lead, owner=cast.other_rep, actor=cast.admin)
    assert routed_to() == cast.rep  # the lead she no longer has frees her place


def test_falls_through_to_the_next_rule_when_nobody_is_eligible(cast: Cast) -> None:
    empty = TeamFactory(name="Empty")
    rule(empty, priority=1)
    full = rule(cast.team, priority=2)
    for rep in (cast.rep, cast.teammate):
        rep.lead_capacity = 0
        rep.save()
    rule(cast.other_team, priority=3)

    lead = unrouted()
    decision = lead_route(lead=lead, now=NOW)

    assert decision is not None
    assert decision.rep == cast.other_rep
    assert decision.rule.team == cast.other_team
    full.refresh_from_db()
    assert full.last_assigned is None


def test_nobody_anywhere_leaves_the_lead_unassigned(cast: Cast) -> None:
    rule(cast.team)
    for rep in (cast.rep, cast.teammate):
        rep.is_active = False
        rep.save()

    assert routed_to() is None


def test_an_owned_lead_is_not_routed(cast: Cast) -> None:
    rule(cast.other_team)
    lead = LeadFactory(owner=cast.rep, stage=Stage.SQL)

    assert lead_route(lead=lead, now=NOW) is None
    lead.refresh_from_db()
    assert lead.owner == cast.rep


# --- What the rep and the history see -------------------------------------------------------


def test_rule_text_on_the_lead_and_in_the_owner_event(cast: Cast) -> None:
    rule(cast.team, name="Stockholm hardware")
    lead = unrouted()

    decision = lead_route(lead=lead, now=NOW)

    text = 'Rule "Stockholm hardware" (round robin in North)'
    assert decision is not None
    assert decision.explanation == text
    lead.refresh_from_db()
    assert (lead.owner, lead.team, lead.assigned_by_rule) == (cast.rep, cast.team, text)
    event = lead.events.get(kind=LeadEventKind.OWNER)
    assert (event.from_value, event.to_value, event.reason, event.actor) == (
        "",
        "Alice Rep",
        text,
        None,
    )


def test_least_loaded_text(cast: Cast) -> None:
    rule(cast.other_team, name="South", strategy=RoutingStrategy.LEAST_LOADED)
    decision = lead_route(lead=unrouted(), now=NOW)
    assert decision is not None
    assert decision.explanation == 'Rule "South" (least loaded in South)'


def test_new_web_lead_is_routed_and_the_rep_emailed(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    rule(cast.team, name="Stockholm hardware")

    with django_capture_on_commit_callbacks(execute=True):
        lead = lead_create(
            actor=None,
            source=LeadSource.LIVE_CHAT,
            contact_name="Anna Svensson",
            company_name="Svensson AB",
            route=True,
            now=NOW,
        )

    lead.refresh_from_db()
    assert lead.owner == cast.rep
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert "Anna Svensson (Svensson AB)" in message.subject
    assert 'Assigned by: Rule "Stockholm hardware" (round robin in North)' in message.body


def test_nothing_is_sent_when_nothing_matches(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        lead = lead_create(
            actor=cast.marketing, source=LeadSource.LIVE_CHAT, contact_name="Anna", route=True
        )
    assert lead.owner is None
    assert mail.outbox == []


def test_routed_when_it_becomes_sql(cast: Cast) -> None:
    from leads.services import lead_move_stage

    rule(cast.team)
    lead = lead_create(
        actor=cast.marketing, source=LeadSource.WEBINAR, contact_name="Anna", stage=Stage.MQL
    )
    assert lead.owner is None

    lead_move_stage(lead=lead, actor=cast.marketing, to=Stage.SQL, now=NOW)
    lead.refresh_from_db()
    assert lead.owner == cast.rep
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.OWNER, actor=None).exists()


# --- Query counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("reps", [2, 10])
@pytest.mark.parametrize("strategy", RoutingStrategy.values)
def test_query_count_does_not_grow_with_reps_or_rules(cast: Cast, reps: int, strategy: str) -> None:
    team = TeamFactory()
    members = [UserFactory(team=team, lead_capacity=100) for _ in range(reps)]
    for member in members:
        LeadFactory.create_batch(2, owner=member, stage=Stage.SQL)
    for _ in range(reps):  # rules that match nobody's reps first
        empty = TeamFactory()
        rule(empty, priority=1, strategy=strategy)
    rule(team, priority=2, strategy=strategy)
    lead = unrouted()

    with CaptureQueriesContext(connection) as queries:
        decision = lead_route(lead=lead, now=NOW)
    assert decision is not None
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # SAVEPOINT (lead_route); SELECT … FOR UPDATE the matching rules; SELECT the active
    # reps of their teams with their recent and open leads (subqueries); for round robin
    # UPDATE the rule's pointer; lead_assign: SAVEPOINT, SELECT … FOR UPDATE the lead,
    # UPDATE the lead, INSERT the OWNER event, RELEASE; RELEASE.
    pointer = ["UPDATE"] if strategy == RoutingStrategy.ROUND_ROBIN else []
    assert statements == [
        "SAVEPOINT",
        "SELECT",
        "SELECT",
        *pointer,
        "SAVEPOINT",
        "SELECT",
        "UPDATE",
        "INSERT",
        "RELEASE",
        "RELEASE",
    ]
