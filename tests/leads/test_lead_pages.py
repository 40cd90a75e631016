"""The lead's own pages: create, edit, the lead with score and timeline, and its actions."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from leads import services
from leads.models import (
    ActivityKind,
    Lead,
    LeadEventKind,
    LeadSource,
    LostReason,
    Stage,
    Temperature,
)
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory
from tests.factories_leads import CustomerFactory, DealFactory, EstimateFactory

pytestmark = pytest.mark.django_db


def new_lead(actor: User, **kwargs: Any) -> Lead:
    data = {"source": LeadSource.WEBINAR, "contact_name": "Anna Svensson", "company_name": "Acme"}
    return services.lead_create(actor=actor, **{**data, **kwargs})


def text(html: str) -> str:
    """The page's visible text on one line (tags out, whitespace squeezed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : start + 6000]


@pytest.fixture
def owned(cast: Cast) -> Lead:
    """Alice's SQL lead: not a marketing lead, so marketing must not see it."""
    return new_lead(cast.rep, stage=Stage.SQL)


@pytest.fixture
def marketing_lead(cast: Cast) -> Lead:
    return new_lead(cast.marketing, contact_name="Mia MQL", company_name="", stage=Stage.MQL)


# --- Access -----------------------------------------------------------------------

VISIBLE_TO = {"owner_rep": True, "manager": True, "other_rep": False, "marketing": False}


@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing", "admin"])
def test_detail_and_edit_are_404_for_whoever_may_not_see_the_lead(
    cast: Cast, owned: Lead, role: str
) -> None:
    client = client_for(cast.roles()[role])
    expected = 200 if VISIBLE_TO.get(role, True) else 404
    assert client.get(reverse("leads:detail", args=[owned.pk])).status_code == expected
    assert client.get(reverse("leads:edit", args=[owned.pk])).status_code == expected


@pytest.mark.parametrize("role", ["other_rep", "marketing"])
def test_actions_on_an_invisible_lead_are_404_and_change_nothing(
    cast: Cast, owned: Lead, role: str
) -> None:
    client = client_for(cast.roles()[role])
    posts = {
        "leads:move_stage": {"to": "lost", "lost_reason": LostReason.PRICE},
        "leads:set_temperature": {"temperature": "hot", "reason": "x"},
        "leads:assign": {"owner": cast.other_rep.pk},
        "leads:hand_to_team": {"team": cast.other_team.pk},
        "leads:edit": {"contact_name": "Hacked", "source": LeadSource.OTHER},
    }
    for name, data in posts.items():
        assert client.post(reverse(name, args=[owned.pk]), data).status_code == 404, name
    fresh = Lead.objects.get(pk=owned.pk)
    assert (fresh.stage, fresh.owner, fresh.contact_name) == (Stage.SQL, cast.rep, "Anna Svensson")


def test_marketing_sees_its_mql_lead_and_may_hand_it_over(cast: Cast, marketing_lead: Lead) -> None:
    html = client_for(cast.marketing).get(reverse("leads:detail", args=[marketing_lead.pk]))
    assert html.status_code == 200
    page = html.content.decode()
    assert 'data-testid="hand-form"' in page and 'data-testid="assign-form"' not in page


def test_actions_beyond_the_role_are_forbidden(cast: Cast, owned: Lead) -> None:
    rep = client_for(cast.rep)
    page = rep.get(reverse("leads:detail", args=[owned.pk])).content.decode()
    assert 'data-testid="assign-form"' not in page and 'data-testid="hand-form"' not in page
    assert (
        rep.post(reverse("leads:assign", args=[owned.pk]), {"owner": cast.rep.pk}).status_code
        == 403
    )
    response = rep.post(reverse("leads:hand_to_team", args=[owned.pk]), {"team": cast.team.pk})
    assert response.status_code == 403
    response = client_for(cast.manager).post(
        reverse("leads:hand_to_team", args=[owned.pk]), {"team": cast.team.pk}
    )
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(owned: Lead) -> None:
    for name in ("leads:detail", "leads:edit"):
        response = Client().get(reverse(name, args=[owned.pk]))
        assert response.status_code == 302 and reverse("login") in response["Location"]
    assert (
        Client().post(reverse("leads:move_stage", args=[owned.pk]), {"to": "lost"}).status_code
        == 302
    )


# --- Create -----------------------------------------------------------------------


def test_rep_creates_a_lead_they_own(cast: Cast) -> None:
    hardware = ProductLineFactory(name="Hardware")
    territory = TerritoryFactory(name="Norrland")
    client = client_for(cast.rep)
    form = client.get(reverse("leads:create")).content.decode()
    assert 'name="owner"' not in form
    timeframe = timezone.localdate() + dt.timedelta(days=10)
    response = client.post(
        reverse("leads:create"),
        {
            "contact_name": "Nils Nilsson",
            "company_name": "Nils AB",
            "email": "NILS@nils.example",
            "phone": "+46 8 123 456",
            "source": LeadSource.REFERRAL,
            "product_lines": [hardware.pk],
            "territory": territory.pk,
            "timeframe": timeframe.isoformat(),
            "estimated_value": "15000.50",
            "stage": Stage.SUSPECT,
        },
    )
    created = Lead.objects.get(company_name="Nils AB")
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", args=[created.pk])
    assert created.owner == cast.rep and created.email == "nils@nils.example"
    assert list(created.product_lines.all()) == [hardware] and created.territory == territory
    assert created.estimated_value == Decimal("15000.50")
    assert created.temperature == Temperature.HOT  # decision within 30 days
    page = text(client.get(response["Location"]).content.decode())
    assert "Lead Nils Nilsson (Nils AB) created." in page
    assert "Hot · from the buying timeframe" in page


def test_create_with_bad_input_explains_and_saves_nothing(cast: Cast) -> None:
    client = client_for(cast.rep)
    before = Lead.objects.count()
    response = client.post(
        reverse("leads:create"), {"source": LeadSource.WEBINAR, "stage": "suspect"}
    )
    assert "Give at least a name, a company, an email, a phone or a customer." in (
        response.content.decode()
    )
    response = client.post(
        reverse("leads:create"),
        {
            "contact_name": "X",
            "source": "carrier pigeon",
            "stage": Stage.WON,
            "email": "not-an-email",
            "estimated_value": "-5",
            "timeframe": "next spring",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice. carrier pigeon is not one of the available choices." in page
    assert "Select a valid choice. won is not one of the available choices." in page
    assert "Enter a valid email address." in page
    assert "Ensure this value is greater than or equal to 0." in page
    assert "Enter a valid date." in page
    assert Lead.objects.count() == before


def test_customer_choices_are_scoped(cast: Cast) -> None:
    mine = CustomerFactory(name="Alice's Customer", owner=cast.rep)
    theirs = CustomerFactory(name="Charlie's Customer", owner=cast.other_rep)
    client = client_for(cast.rep)
    form = client.get(reverse("leads:create")).content.decode()
    assert "Alice&#x27;s Customer" in form and "Charlie" not in form
    data = {"source": LeadSource.EXISTING_CUSTOMER, "stage": "suspect", "customer": theirs.pk}
    response = client.post(reverse("leads:create"), data)
    assert "Choose one of your customers." in response.content.decode()
    assert not Lead.objects.filter(customer=theirs).exists()
    response = client.post(reverse("leads:create"), {**data, "customer": mine.pk})
    assert response.status_code == 302
    assert Lead.objects.get(customer=mine).owner == cast.rep


def test_manager_may_choose_an_owner_in_the_team_only(cast: Cast) -> None:
    client = client_for(cast.manager)
    form = client.get(reverse("leads:create")).content.decode()
    owner_select = form.split('name="owner"', 1)[1].split("</select>", 1)[0]
    assert "Bob Rep" in owner_select and "Charlie Rep" not in owner_select
    data = {"contact_name": "Olle", "source": LeadSource.WEBINAR, "stage": "sql"}
    response = client.post(reverse("leads:create"), {**data, "owner": cast.other_rep.pk})
    assert "Choose an owner from your teams." in response.content.decode()
    response = client.post(reverse("leads:create"), {**data, "owner": cast.teammate.pk})
    assert response.status_code == 302
    assert Lead.objects.get(contact_name="Olle").owner == cast.teammate


def test_a_rep_cannot_give_a_new_lead_to_someone_else(cast: Cast) -> None:
    client_for(cast.rep).post(
        reverse("leads:create"),
        {
            "contact_name": "Sneaky",
            "source": LeadSource.WEBINAR,
            "stage": "suspect",
            "owner": cast.teammate.pk,
        },
    )
    assert Lead.objects.get(contact_name="Sneaky").owner == cast.rep


# --- Edit -------------------------------------------------------------------------


def test_edit_saves_the_changed_fields_and_records_the_new_temperature(
    cast: Cast, owned: Lead
) -> None:
    client = client_for(cast.rep)
    url = reverse("leads:edit", args=[owned.pk])
    form = client.get(url).content.decode()
    assert 'value="Anna Svensson"' in form and 'name="stage"' not in form
    timeframe = timezone.localdate() + dt.timedelta(days=5)
    response = client.post(
        url,
        {
            "contact_name": "Anna S.",
            "company_name": "Acme",
            "source": LeadSource.OTHER,  # shown, not editable: ignored
            "timeframe": timeframe.isoformat(),
        },
    )
    assert response.status_code == 302
    owned.refresh_from_db()
    assert owned.contact_name == "Anna S." and owned.timeframe == timeframe
    assert owned.source == LeadSource.WEBINAR
    assert owned.temperature == Temperature.HOT
    event = owned.events.get(kind=LeadEventKind.TEMPERATURE)
    assert (event.from_value, event.to_value, event.actor) == ("cold", "hot", cast.rep)


def test_edit_with_bad_input_saves_nothing(cast: Cast, owned: Lead) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("leads:edit", args=[owned.pk]),
        {"contact_name": "", "company_name": "", "email": "", "source": LeadSource.WEBINAR},
    )
    assert "Give at least a name, a company, an email, a phone or a customer." in (
        response.content.decode()
    )
    owned.refresh_from_db()
    assert owned.contact_name == "Anna Svensson"


# --- The lead's page: score and timeline ------------------------------------------


def test_detail_shows_the_score_breakdown_and_win_probability(cast: Cast) -> None:
    lead = new_lead(cast.rep, source=LeadSource.REFERRAL, email="anna@acme.example")
    Lead.objects.filter(pk=lead.pk).update(win_probability=Decimal("0.4230"))
    lead.refresh_from_db()
    assert lead.score_breakdown, "lead_create scores the lead"
    page = client_for(cast.rep).get(reverse("leads:detail", args=[lead.pk])).content.decode()
    breakdown = text(section(page, "score-breakdown").split("</table>", 1)[0])
    for line in lead.score_breakdown:
        points = f"+{line['points']}" if line["points"] > 0 else str(line["points"])
        assert f"{line['rule']} {points}" in breakdown
    assert f"Total {lead.score}" in breakdown
    assert "Source +20" in breakdown  # a referral
    assert "learned win probability 42%" in text(page)


def test_timeline_shows_who_when_from_to_and_why(cast: Cast) -> None:
    start = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        lead = new_lead(cast.marketing, contact_name="Tina Timeline", company_name="")
    with time_machine.travel(start + dt.timedelta(days=1), tick=False):
        services.lead_move_stage(
            lead=lead, actor=cast.marketing, to=Stage.WARM, reason="Asked for a demo"
        )
    with time_machine.travel(start + dt.timedelta(days=2), tick=False):
        services.lead_move_stage(lead=lead, actor=cast.marketing, to=Stage.MQL)
        services.lead_move_stage(lead=lead, actor=cast.marketing, to=Stage.SQL)
    with time_machine.travel(start + dt.timedelta(days=3), tick=False):
        services.lead_assign(lead=lead, owner=cast.rep, actor=cast.admin)
        services.lead_move_stage(
            lead=lead, actor=cast.rep, to=Stage.LOST, reason=LostReason.COMPETITOR
        )
    page = client_for(cast.rep).get(reverse("leads:detail", args=[lead.pk])).content.decode()
    timeline = section(page, "timeline").split("</ol>", 1)[0]
    events = [text("<" + item).split("<li")[0] for item in timeline.split("<li")[1:]]
    # Newest first, stage codes shown as their labels.
    lost = next(event for event in events if "SQL → Lost" in event)
    assert "Alice Rep" in lost and "Reason: Competitor chosen" in lost and "March 5, 2026" in lost
    owner = next(
        event for event in events if event.startswith("March 5, 2026") and "Owner" in event
    )
    assert "Ada Admin" in owner and "Alice Rep" in owner
    warm = next(event for event in events if "Suspect → Warm" in event)
    assert "Mona Marketing" in warm and "Reason: Asked for a demo" in warm
    assert "March 3, 2026" in warm
    assert any("MQL → SQL" in event for event in events)
    assert any(
        "Created" in event and "Suspect" in event and "March 2, 2026" in event for event in events
    )
    assert events.index(lost) < events.index(warm)


def test_related_estimates_deals_and_activities_are_listed_with_links(
    cast: Cast, owned: Lead
) -> None:
    customer = CustomerFactory(owner=cast.rep, name="Acme AB")
    estimate = EstimateFactory(lead=owned, customer=customer, owner=cast.rep, title="Quote 1")
    deal = DealFactory(lead=owned, customer=customer, owner=cast.rep, title="Big deal")
    EstimateFactory(lead=owned, customer=customer, owner=cast.other_rep, title="Not yours")
    services.activity_log(
        actor=cast.rep,
        kind=ActivityKind.CALL,
        subject="Intro call",
        occurred_at=timezone.now(),
        lead=owned,
    )
    page = client_for(cast.rep).get(reverse("leads:detail", args=[owned.pk])).content.decode()
    assert f'href="{reverse("leads:estimate_detail", args=[estimate.pk])}"' in page
    assert f'href="{reverse("leads:deal_detail", args=[deal.pk])}"' in page
    assert "Intro call" in section(page, "activities")
    assert "Not yours" not in page


# --- Actions ----------------------------------------------------------------------


def post(client: Client, name: str, lead: Lead, data: dict[str, Any]) -> Any:
    return client.post(reverse(name, args=[lead.pk]), data)


def test_move_stage_offers_only_allowed_stages_and_records_the_reason(
    cast: Cast, owned: Lead
) -> None:
    client = client_for(cast.rep)
    page = client.get(reverse("leads:detail", args=[owned.pk])).content.decode()
    move = section(page, "move-form").split("</form>", 1)[0]
    assert 'value="lost"' in move and 'value="disqualified"' in move
    assert 'value="won"' not in move and 'value="cold"' not in move
    response = post(client, "leads:move_stage", owned, {"to": "lost"})
    assert "Choose the reason from the list." in response.content.decode()
    assert Lead.objects.get(pk=owned.pk).stage == Stage.SQL
    response = post(client, "leads:move_stage", owned, {"to": "cold"})
    assert "This lead cannot move to that stage from where it is." in response.content.decode()
    response = post(
        client, "leads:move_stage", owned, {"to": "lost", "lost_reason": LostReason.PRICE}
    )
    assert response.status_code == 302
    page = text(client.get(response["Location"]).content.decode())
    assert "Moved to Lost." in page and "SQL → Lost" in page and "Price not competitive" in page


def test_temperature_stage_against_the_timeframe_shows_the_services_message(cast: Cast) -> None:
    lead = new_lead(cast.rep)  # no timeframe: cold
    client = client_for(cast.rep)
    response = post(client, "leads:move_stage", lead, {"to": "hot"})
    assert response.status_code == 200
    assert "Say why the temperature differs from the buying timeframe." in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SUSPECT
    response = post(client, "leads:move_stage", lead, {"to": "hot", "reason": "Budget approved"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature, lead.temperature_overridden) == ("hot", "hot", True)


def test_override_temperature_needs_a_reason_and_can_go_back(cast: Cast) -> None:
    lead = new_lead(cast.rep)
    client = client_for(cast.rep)
    response = post(client, "leads:set_temperature", lead, {"temperature": "warm"})
    assert "Say why the temperature differs from the buying timeframe." in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).temperature == Temperature.COLD
    response = post(
        client, "leads:set_temperature", lead, {"temperature": "warm", "reason": "Trade fair talk"}
    )
    page = text(client.get(response["Location"]).content.decode())
    assert "Temperature set to Warm." in page and "Warm · set by hand" in page
    assert "Cold → Warm" in page and "Trade fair talk" in page
    response = post(client, "leads:set_temperature", lead, {"back_to_timeframe": "1"})
    page = text(client.get(response["Location"]).content.decode())
    assert "The temperature follows the buying timeframe again." in page
    assert "Cold · from the buying timeframe" in page


def test_manager_assigns_within_the_team_and_sees_the_refusal_otherwise(
    cast: Cast, owned: Lead
) -> None:
    client = client_for(cast.manager)
    response = post(client, "leads:assign", owned, {"owner": cast.other_rep.pk})
    assert "Choose an owner from your teams." in response.content.decode()
    assert Lead.objects.get(pk=owned.pk).owner == cast.rep
    response = post(client, "leads:assign", owned, {"owner": cast.teammate.pk})
    page = text(client.get(response["Location"]).content.decode())
    assert "Assigned to Bob Rep." in page and "Alice Rep → Bob Rep" in page


def test_admin_assigning_to_an_inactive_rep_sees_the_services_message(
    cast: Cast, owned: Lead
) -> None:
    client = client_for(cast.admin)
    User.objects.filter(pk=cast.other_rep.pk).update(is_active=False)
    response = post(client, "leads:assign", owned, {"owner": cast.other_rep.pk})
    assert "Choose an owner from your teams." in response.content.decode()
    assert Lead.objects.get(pk=owned.pk).owner == cast.rep


def test_marketing_hands_an_mql_lead_to_a_team(cast: Cast, marketing_lead: Lead) -> None:
    client = client_for(cast.marketing)
    response = post(client, "leads:hand_to_team", marketing_lead, {"team": cast.team.pk})
    assert response.status_code == 302
    page = text(client.get(response["Location"]).content.decode())
    assert "Handed to North." in page
    assert Lead.objects.get(pk=marketing_lead.pk).team == cast.team
    # North's manager now sees the lead and can assign it.
    manager = client_for(cast.manager)
    assert manager.get(reverse("leads:detail", args=[marketing_lead.pk])).status_code == 200


def test_marketing_cannot_hand_over_a_lead_that_is_not_mql(cast: Cast) -> None:
    lead = new_lead(cast.marketing)
    client = client_for(cast.marketing)
    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="hand-form"' not in page
    response = post(client, "leads:hand_to_team", lead, {"team": cast.team.pk})
    assert "Only a marketing-qualified lead (MQL) can be handed to a team." in (
        response.content.decode()
    )
    assert Lead.objects.get(pk=lead.pk).team is None


def test_a_move_that_takes_the_lead_out_of_sight_returns_to_the_list(
    cast: Cast, marketing_lead: Lead
) -> None:
    """Marketing qualifies an MQL to SQL: it is routed or stays unassigned; if it goes
    to a rep, marketing no longer sees it and lands on the list, not on a 404."""
    services.lead_hand_to_team(lead=marketing_lead, team=cast.team, actor=cast.marketing)
    services.lead_assign(lead=marketing_lead, owner=cast.rep, actor=cast.manager)
    client = client_for(cast.marketing)
    response = post(client, "leads:move_stage", marketing_lead, {"to": "sql"})
    assert response.status_code == 302 and response["Location"] == reverse("leads:list")
    assert "is now outside your leads" in client.get(reverse("leads:list")).content.decode()


def test_detail_query_count_does_not_grow_with_the_history(cast: Cast) -> None:
    """Expected queries (manager): 1 session, 2 user, 2b team/member ids, 3 the lead with
    owner, team,
    territory, customer and creator joined, 4 estimates, 5 deals, 6 activities (each
    scoped, with what they show joined), 7 product lines, 8 the timeline with its
    actors, 9 owner choices of the assign form."""
    lead = new_lead(cast.rep)
    client = client_for(cast.manager)
    url = reverse("leads:detail", args=[lead.pk])

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    before = count()
    for step in range(6):
        target = Temperature.HOT if step % 2 else Temperature.WARM
        services.lead_set_temperature(lead=lead, actor=cast.rep, temperature=target, reason="x")
        services.activity_log(
            actor=cast.rep,
            kind=ActivityKind.CALL,
            subject=f"Call {step}",
            occurred_at=timezone.now(),
            lead=lead,
        )
    assert count() == before == 10
