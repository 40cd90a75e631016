"""Sales pages: estimates and their workflow, deals, activities and to-dos."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ProductLine
from leads.models import (
    Activity,
    ActivityKind,
    Customer,
    Deal,
    DealStatus,
    Estimate,
    EstimateStatus,
    Lead,
    LostReason,
    Stage,
)
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory
from tests.factories_leads import (
    ActivityFactory,
    CustomerFactory,
    DealFactory,
    EstimateFactory,
    LeadFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


def page(response: Any) -> str:
    return response.content.decode()


@dataclass
class World:
    """One of everything, owned by ``cast.rep`` (team North)."""

    line: ProductLine
    customer: Customer
    lead: Lead
    estimate: Estimate
    deal: Deal
    activity: Activity


@pytest.fixture
def world(cast: Cast) -> World:
    line = ProductLineFactory(name="Forklifts")
    customer = CustomerFactory(owner=cast.rep, name="Nordic Steel AB")
    lead = LeadFactory(owner=cast.rep, customer=customer, stage=Stage.SQL)
    return World(
        line=line,
        customer=customer,
        lead=lead,
        estimate=EstimateFactory(
            owner=cast.rep, customer=customer, lead=lead, product_line=line, title="Q-1 forklifts"
        ),
        deal=DealFactory(owner=cast.rep, customer=customer, product_line=line, title="Old deal"),
        activity=ActivityFactory(
            owner=cast.rep, customer=customer, lead=lead, subject="Called the buyer"
        ),
    )


SALES_ACCESS = {"owner_rep": 200, "manager": 200, "other_rep": 404, "marketing": 404, "admin": 200}
LIST_ACCESS = {"owner_rep": 200, "manager": 200, "other_rep": 200, "marketing": 403, "admin": 200}
CREATE_ACCESS = {"owner_rep": 200, "manager": 200, "other_rep": 404, "marketing": 403, "admin": 200}
ROLES = list(SALES_ACCESS)


# --- Access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_estimate_and_deal_pages_follow_the_access_rules(
    cast: Cast, world: World, role: str
) -> None:
    client = client_for(cast.roles()[role])
    pages = {
        reverse("leads:estimate_detail", args=[world.estimate.pk]): SALES_ACCESS,
        reverse("leads:estimate_accept", args=[world.estimate.pk]): SALES_ACCESS,
        reverse("leads:deal_detail", args=[world.deal.pk]): SALES_ACCESS,
        reverse("leads:estimate_list"): LIST_ACCESS,
        reverse("leads:deal_list"): LIST_ACCESS,
        reverse("leads:estimate_create") + f"?customer={world.customer.pk}": CREATE_ACCESS,
        reverse("leads:estimate_create") + f"?lead={world.lead.pk}": CREATE_ACCESS,
        reverse("leads:deal_create") + f"?customer={world.customer.pk}": CREATE_ACCESS,
        reverse("leads:deal_create") + f"?lead={world.lead.pk}": CREATE_ACCESS,
    }
    for url, access in pages.items():
        expected = access[role]
        if url.startswith(reverse("leads:estimate_accept", args=[world.estimate.pk])):
            expected = 302 if expected == 200 else expected  # a draft cannot be accepted yet
        assert client.get(url).status_code == expected, url


@pytest.mark.parametrize("role", ROLES)
def test_lists_show_only_what_the_role_may_see(cast: Cast, world: World, role: str) -> None:
    client = client_for(cast.roles()[role])
    sees = SALES_ACCESS[role] == 200
    for url, text in (
        (reverse("leads:estimate_list"), "Q-1 forklifts"),
        (reverse("leads:deal_list"), "Old deal"),
        (reverse("leads:activity_list"), "Called the buyer"),
    ):
        response = client.get(url)
        if role == "marketing" and "activities" not in url:
            assert response.status_code == 403
            assert "Estimates and deals are for the sales team." in page(response)
            continue
        assert response.status_code == 200
        assert (text in page(response)) == sees, (url, role)


@pytest.mark.parametrize("role", ROLES)
def test_post_actions_follow_the_access_rules(cast: Cast, world: World, role: str) -> None:
    client = client_for(cast.roles()[role])
    estimate = world.estimate
    estimate.status, estimate.issued_on = EstimateStatus.SENT, timezone.localdate()
    estimate.save()
    todo = ActivityFactory(
        owner=cast.rep, customer=world.customer, due_at=timezone.now(), subject="Call back"
    )
    allowed = SALES_ACCESS[role] == 200
    responses = [
        client.post(reverse("leads:estimate_reject", args=[estimate.pk])),
        client.post(reverse("leads:activity_complete", args=[todo.pk])),
    ]
    assert [r.status_code for r in responses] == ([302, 302] if allowed else [404, 404])
    estimate.refresh_from_db()
    todo.refresh_from_db()
    assert (estimate.status == EstimateStatus.REJECTED) == allowed
    assert (todo.done_at is not None) == allowed

    other = EstimateFactory(owner=cast.rep, customer=world.customer)
    for name in ("estimate_send", "estimate_accept"):
        response = client.post(
            reverse(f"leads:{name}", args=[other.pk]), {"close_date": "2020-01-01"}
        )
        assert response.status_code == (302 if allowed else 404), name
    other.refresh_from_db()
    assert other.status == (EstimateStatus.ACCEPTED if allowed else EstimateStatus.DRAFT)
    assert Deal.objects.filter(estimate=other).exists() == allowed


@pytest.mark.parametrize("role", ROLES)
def test_activity_pages_follow_the_access_rules(cast: Cast, world: World, role: str) -> None:
    client = client_for(cast.roles()[role])
    expected = SALES_ACCESS[role]
    assert client.get(reverse("leads:activity_list")).status_code == 200
    for query in (
        f"?customer={world.customer.pk}",
        f"?lead={world.lead.pk}",
        f"?deal={world.deal.pk}",
    ):
        response = client.get(reverse("leads:activity_create") + query)
        assert response.status_code == expected, query


def test_marketing_logs_activities_on_unassigned_leads(cast: Cast) -> None:
    lead = LeadFactory(owner=None, stage=Stage.MQL, contact_name="Fair Visitor")
    client = client_for(cast.marketing)
    response = client.post(
        reverse("leads:activity_create") + f"?lead={lead.pk}",
        {"kind": "email", "subject": "Sent the brochure", "occurred_at": "2025-03-01T09:30"},
    )
    assert response.status_code == 302
    activity = Activity.objects.get(subject="Sent the brochure")
    assert activity.owner == cast.marketing and activity.lead == lead
    assert "Sent the brochure" in page(client.get(reverse("leads:activity_list")))


def test_another_teams_rep_cannot_create_on_someone_elses_customer(
    cast: Cast, world: World
) -> None:
    client = client_for(cast.other_rep)
    data = {"product_line": world.line.pk, "amount": "100", "valid_until": "2099-01-01"}
    url = reverse("leads:estimate_create") + f"?customer={world.customer.pk}"
    assert client.post(url, data).status_code == 404
    deal_url = reverse("leads:deal_create") + f"?customer={world.customer.pk}"
    assert (
        client.post(deal_url, {**data, "status": "won", "close_date": "2020-01-01"}).status_code
        == 404
    )
    activity_url = reverse("leads:activity_create") + f"?customer={world.customer.pk}"
    post = {"kind": "call", "subject": "x", "occurred_at": "2025-01-01T10:00"}
    assert client.post(activity_url, post).status_code == 404
    assert Estimate.objects.count() == 1 and Deal.objects.count() == 1
    assert Activity.objects.count() == 1


# --- Estimate workflow ------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_estimate_from_a_lead_through_sent_and_accepted_wins_the_deal_and_the_lead(
    cast: Cast, world: World
) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("leads:estimate_create") + f"?lead={world.lead.pk}",
        {
            "product_line": world.line.pk,
            "title": "Fleet of 12",
            "amount": "125000.50",
            "valid_until": "2025-04-30",
        },
    )
    estimate = Estimate.objects.get(title="Fleet of 12")
    assert response["Location"] == reverse("leads:estimate_detail", args=[estimate.pk])
    assert (estimate.status, estimate.customer, estimate.lead) == (
        EstimateStatus.DRAFT,
        world.customer,
        world.lead,
    )
    assert estimate.owner == cast.rep and estimate.amount == Decimal("125000.50")

    client.post(reverse("leads:estimate_send", args=[estimate.pk]))
    estimate.refresh_from_db()
    assert estimate.status == EstimateStatus.SENT
    assert estimate.issued_on == dt.date(2025, 3, 12)

    detail = page(client.get(reverse("leads:estimate_detail", args=[estimate.pk])))
    assert reverse("leads:estimate_accept", args=[estimate.pk]) in detail
    assert 'name="close_date"' in detail

    response = client.post(
        reverse("leads:estimate_accept", args=[estimate.pk]), {"close_date": "2025-03-10"}
    )
    deal = Deal.objects.get(estimate=estimate)
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:deal_detail", args=[deal.pk])
    assert (deal.status, deal.amount, deal.close_date) == (
        DealStatus.WON,
        Decimal("125000.50"),
        dt.date(2025, 3, 10),
    )
    estimate.refresh_from_db()
    world.lead.refresh_from_db()
    assert estimate.status == EstimateStatus.ACCEPTED
    assert world.lead.stage == Stage.WON
    shown = page(client.get(response["Location"]))
    assert "Estimate accepted: this is the won deal." in shown
    assert f"125,000.50 {settings.BASE_CURRENCY}" in shown


def test_refused_transitions_show_a_message_and_change_nothing(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    draft = world.estimate
    detail = reverse("leads:estimate_detail", args=[draft.pk])

    response = client.post(reverse("leads:estimate_reject", args=[draft.pk]), follow=True)
    assert "A draft estimate cannot be rejected." in page(response)
    response = client.get(reverse("leads:estimate_accept", args=[draft.pk]), follow=True)
    assert "Only a sent estimate can be accepted; this one is draft." in page(response)
    response = client.post(
        reverse("leads:estimate_accept", args=[draft.pk]), {"close_date": "2020-01-01"}
    )
    assert response["Location"] == detail

    client.post(reverse("leads:estimate_send", args=[draft.pk]))
    response = client.post(reverse("leads:estimate_send", args=[draft.pk]), follow=True)
    assert "A sent estimate cannot be sent." in page(response)
    client.post(reverse("leads:estimate_reject", args=[draft.pk]))
    response = client.post(reverse("leads:estimate_send", args=[draft.pk]), follow=True)
    assert "A rejected estimate cannot be sent." in page(response)
    draft.refresh_from_db()
    assert draft.status == EstimateStatus.REJECTED
    assert not Deal.objects.filter(estimate=draft).exists()


def test_accept_with_a_bad_close_date_keeps_the_estimate_sent(cast: Cast, world: World) -> None:
    estimate = world.estimate
    estimate.status, estimate.issued_on = EstimateStatus.SENT, timezone.localdate()
    estimate.save()
    client = client_for(cast.rep)
    url = reverse("leads:estimate_accept", args=[estimate.pk])
    asked = client.get(url)
    assert asked.status_code == 200 and 'name="close_date"' in page(asked)
    future = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    for close_date, message in (
        (future, "A deal closes today or earlier, not in the future."),
        ("31/31/2025", "Enter a valid date."),
        ("", "This field is required."),
    ):
        response = client.post(url, {"close_date": close_date})
        assert response.status_code == 200
        assert message in page(response)
    estimate.refresh_from_db()
    world.lead.refresh_from_db()
    assert estimate.status == EstimateStatus.SENT
    assert not Deal.objects.filter(estimate=estimate).exists()
    assert world.lead.stage == Stage.SQL


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": "abc"}, "Enter a number."),
        ({"amount": "0"}, "Ensure this value is greater than or equal to 0.01."),
        ({"amount": "-5"}, "Ensure this value is greater than or equal to 0.01."),
        ({"amount": "1e30"}, "Ensure that there are no more than 14 digits in total."),
        ({"valid_until": "2001-01-01"}, "Valid until cannot be in the past."),
        ({"valid_until": "soon"}, "Enter a valid date."),
        ({"product_line": "999999"}, "Select a valid choice."),
    ],
)
def test_bad_estimate_input_is_refused_and_saves_nothing(
    cast: Cast, world: World, data: dict[str, str], message: str
) -> None:
    post = {
        "product_line": world.line.pk,
        "amount": "100",
        "valid_until": (timezone.localdate() + dt.timedelta(days=5)).isoformat(),
        **data,
    }
    response = client_for(cast.rep).post(
        reverse("leads:estimate_create") + f"?customer={world.customer.pk}", post
    )
    assert response.status_code == 200
    assert message in page(response)
    assert Estimate.objects.count() == 1


def test_inactive_product_lines_cannot_be_quoted(cast: Cast, world: World) -> None:
    retired = ProductLineFactory(name="Steam engines", is_active=False)
    client = client_for(cast.rep)
    url = reverse("leads:estimate_create") + f"?customer={world.customer.pk}"
    assert "Steam engines" not in page(client.get(url))
    response = client.post(
        url, {"product_line": retired.pk, "amount": "10", "valid_until": "2099-01-01"}
    )
    assert "Select a valid choice." in page(response)


@pytest.mark.parametrize("query", ["", "?customer=abc", "?lead=999999", "?customer=1&lead=x"])
def test_estimate_create_without_a_proper_source_never_500s(
    cast: Cast, world: World, query: str
) -> None:
    response = client_for(cast.rep).get(reverse("leads:estimate_create") + query)
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert 'data-testid="start-problem"' in page(response)


def test_estimate_from_a_lead_without_customer_asks_for_one(cast: Cast) -> None:
    lead = LeadFactory(owner=cast.rep, customer=None)
    response = client_for(cast.rep).get(reverse("leads:estimate_create") + f"?lead={lead.pk}")
    assert "This lead has no customer yet" in page(response)


def test_estimate_with_a_lead_of_another_customer_is_refused(cast: Cast, world: World) -> None:
    elsewhere = CustomerFactory(owner=cast.rep)
    url = reverse("leads:estimate_create") + f"?customer={elsewhere.pk}&lead={world.lead.pk}"
    response = client_for(cast.rep).post(
        url, {"product_line": world.line.pk, "amount": "10", "valid_until": "2099-01-01"}
    )
    assert "That lead belongs to another customer." in page(response)
    assert Estimate.objects.count() == 1


def test_manager_creates_an_estimate_for_a_team_member(cast: Cast, world: World) -> None:
    teammates_customer = CustomerFactory(owner=cast.teammate)
    client = client_for(cast.manager)
    url = reverse("leads:estimate_create") + f"?customer={teammates_customer.pk}"
    assert f'value="{cast.teammate.pk}" selected' in page(client.get(url))
    client.post(
        url,
        {
            "product_line": world.line.pk,
            "amount": "10",
            "valid_until": "2099-01-01",
            "owner": cast.teammate.pk,
        },
    )
    assert Estimate.objects.get(customer=teammates_customer).owner == cast.teammate


def test_estimate_list_filters_by_status_and_product_line(cast: Cast, world: World) -> None:
    other_line = ProductLineFactory(name="Cranes")
    EstimateFactory(
        owner=cast.rep,
        customer=world.customer,
        product_line=other_line,
        title="Crane quote",
        status=EstimateStatus.SENT,
        issued_on=dt.date(2025, 1, 1),
    )
    client = client_for(cast.rep)
    url = reverse("leads:estimate_list")

    def titles(**params: Any) -> set[str]:
        body = page(client.get(url, params))
        return {title for title in ("Q-1 forklifts", "Crane quote") if title in body}

    assert titles() == {"Q-1 forklifts", "Crane quote"}
    assert titles(status="sent") == {"Crane quote"}
    assert titles(status="draft") == {"Q-1 forklifts"}
    assert titles(product_line=other_line.pk) == {"Crane quote"}
    assert titles(status="draft", product_line=other_line.pk) == set()
    # Nonsense filters are reported and ignored, never a 500.
    response = client.get(url, {"status": "bogus", "product_line": "x", "page": "zz"})
    assert response.status_code == 200
    assert "Select a valid choice." in page(response)


# --- Deals ----------------------------------------------------------------------------------------


def deal_post(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "status": "won",
        "lost_reason": "",
        "product_line": world.line.pk,
        "amount": "5000",
        "close_date": timezone.localdate().isoformat(),
        "title": "New deal",
        **overrides,
    }


def test_a_lost_deal_needs_a_reason_and_then_loses_the_lead(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    url = reverse("leads:deal_create") + f"?lead={world.lead.pk}"
    response = client.post(url, deal_post(world, status="lost"))
    assert response.status_code == 200
    assert "Choose why the deal was lost." in page(response)
    assert Deal.objects.count() == 1
    world.lead.refresh_from_db()
    assert world.lead.stage == Stage.SQL

    response = client.post(url, deal_post(world, status="lost", lost_reason=LostReason.PRICE))
    deal = Deal.objects.get(title="New deal")
    assert response["Location"] == reverse("leads:deal_detail", args=[deal.pk])
    assert (deal.status, deal.lost_reason, deal.customer) == (
        DealStatus.LOST,
        LostReason.PRICE,
        world.customer,
    )
    world.lead.refresh_from_db()
    assert (world.lead.stage, world.lead.lost_reason) == (Stage.LOST, LostReason.PRICE)
    assert "Price not competitive" in page(client.get(response["Location"]))


def test_a_won_deal_wins_the_lead_and_drops_a_stray_lost_reason(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    client.post(
        reverse("leads:deal_create") + f"?lead={world.lead.pk}",
        deal_post(world, status="won", lost_reason=LostReason.PRICE),
    )
    deal = Deal.objects.get(title="New deal")
    assert (deal.status, deal.lost_reason) == (DealStatus.WON, "")
    world.lead.refresh_from_db()
    assert world.lead.stage == Stage.WON


def test_deal_form_hides_the_lost_reason_until_lost_is_picked(cast: Cast, world: World) -> None:
    body = page(
        client_for(cast.rep).get(reverse("leads:deal_create") + f"?customer={world.customer.pk}")
    )
    assert 'id="div_id_lost_reason"' in body
    assert 'reason.hidden = !(picked && picked.value === "lost")' in body


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"status": "maybe"}, "Select a valid choice."),
        ({"status": "lost", "lost_reason": "bad luck"}, "Select a valid choice."),
        ({"amount": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"amount": "lots"}, "Enter a number."),
        ({"close_date": "2999-01-01"}, "A deal closes today or earlier, not in the future."),
        ({"close_date": "yesterday"}, "Enter a valid date."),
    ],
)
def test_bad_deal_input_is_refused_and_saves_nothing(
    cast: Cast, world: World, overrides: dict[str, str], message: str
) -> None:
    response = client_for(cast.rep).post(
        reverse("leads:deal_create") + f"?lead={world.lead.pk}", deal_post(world, **overrides)
    )
    assert response.status_code == 200
    assert message in page(response)
    assert Deal.objects.count() == 1
    world.lead.refresh_from_db()
    assert world.lead.stage == Stage.SQL


@time_machine.travel(NOW, tick=False)
def test_deal_list_filters_outcome_period_and_product_line(cast: Cast, world: World) -> None:
    cranes = ProductLineFactory(name="Cranes")
    world.deal.close_date = dt.date(2025, 3, 1)
    world.deal.save()
    DealFactory(
        owner=cast.rep,
        customer=world.customer,
        product_line=cranes,
        title="Lost crane",
        status=DealStatus.LOST,
        lost_reason=LostReason.COMPETITOR,
        close_date=dt.date(2025, 2, 10),
    )
    DealFactory(
        owner=cast.rep,
        customer=world.customer,
        product_line=world.line,
        title="Last year win",
        close_date=dt.date(2024, 11, 5),
        amount=Decimal("700"),
    )
    client = client_for(cast.rep)
    url = reverse("leads:deal_list")

    def titles(**params: Any) -> set[str]:
        body = page(client.get(url, params))
        return {t for t in ("Old deal", "Lost crane", "Last year win") if t in body}

    assert titles() == {"Old deal", "Lost crane", "Last year win"}
    assert titles(status="lost") == {"Lost crane"}
    assert titles(period="this_month") == {"Old deal"}
    assert titles(period="last_month") == {"Lost crane"}
    assert titles(period="this_quarter") == {"Old deal", "Lost crane"}
    assert titles(period="last_year") == {"Last year win"}
    assert titles(start="2025-02-01", end="2025-02-28") == {"Lost crane"}
    assert titles(product_line=cranes.pk) == {"Lost crane"}
    response = client.get(url, {"start": "2025-03-01", "end": "2025-01-01"})
    assert "The end of the period is before its start." in page(response)
    response = client.get(url, {"period": "forever", "start": "x"})
    assert response.status_code == 200


def test_deal_list_totals_use_the_base_currency(cast: Cast, world: World, settings: Any) -> None:
    settings.BASE_CURRENCY = "SEK"
    DealFactory(owner=cast.rep, customer=world.customer, amount=Decimal("1234567.50"))
    body = page(client_for(cast.rep).get(reverse("leads:deal_list")))
    # 5,000.00 (the world's deal) + 1,234,567.50
    assert "1,239,567.50 SEK" in body
    assert "1,234,567.50 SEK" in body


# --- Activities ---------------------------------------------------------------------------------


def test_logging_a_call_on_a_lead_moves_its_last_contact(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("leads:activity_create") + f"?lead={world.lead.pk}",
        {
            "kind": ActivityKind.CALL,
            "subject": "Talked price",
            "occurred_at": "2025-03-11T14:30",
            "outcome": "Wants a quote",
        },
    )
    assert response.status_code == 302
    activity = Activity.objects.get(subject="Talked price")
    assert activity.customer == world.customer  # taken from the lead
    world.lead.refresh_from_db()
    assert world.lead.last_contact_at == activity.occurred_at
    # The typed time is the rep's own wall-clock time.
    local = timezone.localtime(activity.occurred_at, zoneinfo.ZoneInfo(cast.rep.time_zone))
    assert (local.day, local.hour, local.minute) == (11, 14, 30)


def test_a_todo_moves_last_contact_only_when_done(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    with time_machine.travel(NOW, tick=False):
        client.post(
            reverse("leads:activity_create") + f"?lead={world.lead.pk}",
            {
                "kind": ActivityKind.CALL,
                "subject": "Call back Friday",
                "occurred_at": "2025-03-12T09:00",
                "due_at": "2025-03-14T09:00",
            },
        )
    todo = Activity.objects.get(subject="Call back Friday")
    world.lead.refresh_from_db()
    assert todo.is_todo and world.lead.last_contact_at is None

    listing = page(client.get(reverse("leads:activity_list")))
    assert listing.index("Call back Friday") < listing.index("Called the buyer")

    done_at = dt.datetime(2025, 3, 14, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(done_at, tick=False):
        response = client.post(
            reverse("leads:activity_complete", args=[todo.pk]), {"outcome": "Agreed a demo"}
        )
    assert response["Location"] == reverse("leads:activity_list")
    todo.refresh_from_db()
    world.lead.refresh_from_db()
    assert todo.done_at == done_at and todo.outcome == "Agreed a demo"
    assert world.lead.last_contact_at == done_at

    again = client.post(reverse("leads:activity_complete", args=[todo.pk]), follow=True)
    assert "This activity was already done." in page(again)


def test_overdue_todos_come_first_and_are_highlighted(cast: Cast, world: World) -> None:
    now = timezone.now()
    ActivityFactory(
        owner=cast.rep,
        customer=world.customer,
        subject="Late one",
        due_at=now - dt.timedelta(days=2),
    )
    ActivityFactory(
        owner=cast.rep,
        customer=world.customer,
        subject="Soon one",
        due_at=now + dt.timedelta(days=1),
    )
    ActivityFactory(
        owner=cast.teammate,
        customer=CustomerFactory(owner=cast.teammate),
        subject="Bob's to-do",
        due_at=now,
    )
    body = page(client_for(cast.rep).get(reverse("leads:activity_list")))
    todos = body[body.index('data-testid="todos"') : body.index('data-testid="recent"')]
    assert todos.index("Late one") < todos.index("Soon one")
    assert todos.count('data-testid="overdue"') == 1
    assert "Bob&#x27;s to-do" not in body
    manager_body = page(client_for(cast.manager).get(reverse("leads:activity_list")))
    split = manager_body.index('data-testid="recent"')
    # The manager's to-dos are their own; the team's open ones are among the recent.
    assert "Nothing to do: no open to-dos." in manager_body[:split]
    assert "Bob&#x27;s to-do" in manager_body[split:] and "Late one" in manager_body[split:]


def test_activity_create_prefills_from_a_deal_and_returns_there(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    url = reverse("leads:activity_create") + f"?deal={world.deal.pk}"
    assert "Old deal" in page(client.get(url))
    response = client.post(
        url, {"kind": "meeting", "subject": "Handover meeting", "occurred_at": "2025-03-01T10:00"}
    )
    assert response["Location"] == reverse("leads:deal_detail", args=[world.deal.pk])
    activity = Activity.objects.get(subject="Handover meeting")
    assert (activity.deal, activity.customer) == (world.deal, world.customer)
    assert "Handover meeting" in page(client.get(response["Location"]))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"kind": "smoke signal"}, "Select a valid choice."),
        ({"subject": ""}, "This field is required."),
        ({"occurred_at": "last tuesday"}, "Enter a valid date/time."),
        ({"due_at": "2025-13-45T99:00"}, "Enter a valid date/time."),
    ],
)
def test_bad_activity_input_is_refused_and_saves_nothing(
    cast: Cast, world: World, data: dict[str, str], message: str
) -> None:
    post = {"kind": "call", "subject": "Hello", "occurred_at": "2025-03-01T10:00", **data}
    response = client_for(cast.rep).post(
        reverse("leads:activity_create") + f"?customer={world.customer.pk}", post
    )
    assert response.status_code == 200
    assert message in page(response)
    assert Activity.objects.count() == 1
    world.lead.refresh_from_db()
    assert world.lead.last_contact_at is None


def test_activity_create_without_a_link_explains_itself(cast: Cast) -> None:
    response = client_for(cast.rep).get(reverse("leads:activity_create"))
    assert response.status_code == 200
    assert "Log an activity from a lead, a customer or a deal" in page(response)
    assert (
        client_for(cast.rep).get(reverse("leads:activity_create") + "?deal=zz").status_code == 404
    )


def test_complete_refuses_an_overlong_outcome_and_ignores_foreign_next(
    cast: Cast, world: World
) -> None:
    todo = ActivityFactory(owner=cast.rep, customer=world.customer, due_at=timezone.now())
    client = client_for(cast.rep)
    response = client.post(
        reverse("leads:activity_complete", args=[todo.pk]),
        {"outcome": "x" * 300, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("leads:activity_list")
    todo.refresh_from_db()
    assert todo.done_at is None
    assert client.get(reverse("leads:activity_complete", args=[todo.pk])).status_code == 405


# --- Query counts ---------------------------------------------------------------------------------


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def more_rows(cast: Cast, world: World) -> None:
    """One more estimate, deal and activity (and to-do) for the rep and the teammate."""
    for owner in (cast.rep, cast.teammate):
        customer = CustomerFactory(owner=owner)
        lead = LeadFactory(owner=owner, customer=customer)
        EstimateFactory(owner=owner, customer=customer, lead=lead, product_line=world.line)
        deal = DealFactory(owner=owner, customer=customer, lead=lead, product_line=world.line)
        ActivityFactory(owner=owner, customer=customer, lead=lead, deal=deal)
        ActivityFactory(owner=owner, customer=customer, due_at=timezone.now())


@pytest.mark.parametrize(
    "name, expected",
    [
        # session, user, the manager's team and member ids, product lines (filter
        # choices), COUNT, the page (customer, product line and owner joined)
        ("estimate_list", 6),
        # session, user, the manager's team and member ids, totals (one aggregate),
        # product lines (filter choices), COUNT, the page (customer, product line and
        # owner joined)
        ("deal_list", 7),
        # session, user, the manager's team and member ids, the user's to-dos with their
        # total (owner, lead, customer and deal joined), COUNT of the recent ones, the
        # page of recent ones (same joins)
        ("activity_list", 6),
    ],
)
def test_list_query_counts_do_not_grow(cast: Cast, world: World, name: str, expected: int) -> None:
    client = client_for(cast.manager)
    url = reverse(f"leads:{name}")
    more_rows(cast, world)
    before = count_queries(client, url)
    more_rows(cast, world)
    assert count_queries(client, url) == before == expected


def test_filtered_list_query_counts_do_not_grow(cast: Cast, world: World) -> None:
    client = client_for(cast.rep)
    url = reverse("leads:deal_list") + f"?status=won&period=this_year&product_line={world.line.pk}"
    more_rows(cast, world)
    before = count_queries(client, url)
    more_rows(cast, world)
    # As above, plus the product line the filter names (the form checks it exists).
    assert count_queries(client, url) == before == 7


def test_deal_detail_query_count_does_not_grow(cast: Cast, world: World) -> None:
    """session, user, the deal (customer, lead, estimate, product line, owner, territory
    joined), its activities with their total, its surveys (feedback.selectors.deal_surveys)."""
    client = client_for(cast.rep)
    url = reverse("leads:deal_detail", args=[world.deal.pk])
    ActivityFactory(owner=cast.rep, customer=world.customer, deal=world.deal)
    before = count_queries(client, url)
    ActivityFactory(owner=cast.rep, customer=world.customer, deal=world.deal)
    assert count_queries(client, url) == before == 5


def test_money_follows_the_users_language(cast: Cast, world: World, settings: Any) -> None:
    settings.BASE_CURRENCY = "SEK"
    cast.rep.language = "sv"
    cast.rep.save(update_fields=["language"])
    world.deal.amount = Decimal("1234567.50")
    world.deal.save()
    body = page(client_for(cast.rep).get(reverse("leads:deal_detail", args=[world.deal.pk])))
    assert "1\xa0234\xa0567,50 SEK" in body


def test_admin_must_name_the_owner_of_an_estimate(cast: Cast, world: World) -> None:
    unowned = CustomerFactory(owner=None)
    client = client_for(cast.admin)
    url = reverse("leads:estimate_create") + f"?customer={unowned.pk}"
    data = {"product_line": world.line.pk, "amount": "10", "valid_until": "2099-01-01"}
    response = client.post(url, data)
    assert response.status_code == 200 and "This field is required." in page(response)
    assert client.post(url, {**data, "owner": cast.teammate.pk}).status_code == 302
    assert Estimate.objects.get(customer=unowned).owner == cast.teammate
