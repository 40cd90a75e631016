"""Customer pages: list, full view, create/edit with duplicate warnings, contacts, merge."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from leads.models import (
    Activity,
    Contact,
    Customer,
    Deal,
    Estimate,
    Lead,
    Stage,
    normalise_phone,
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

# What each role of the cast gets on a page about a customer owned by ``cast.rep``.
SEES_REPS_CUSTOMER = {
    "owner_rep": 200,
    "manager": 200,
    "other_rep": 404,
    "marketing": 404,
    "admin": 200,
}


def page(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "kind": "company",
        "name": "Nordic Steel AB",
        "email": "",
        "phone": "",
        "address": "",
        "city": "",
        "country": "",
        "language": "sv",
        "territory": "",
        "notes": "",
        "extra": "",
    }
    data.update(overrides)
    return data


def make_customer(**fields: object) -> Customer:
    """A customer row as the services would store it (normalised phone included)."""
    fields.setdefault("phone_normalised", normalise_phone(str(fields.get("phone", ""))))
    return CustomerFactory(**fields)


def rep_customer(cast: Cast, **fields: object) -> Customer:
    return make_customer(owner=cast.rep, **fields)


# --- Access ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(SEES_REPS_CUSTOMER))
@pytest.mark.parametrize("name", ["customer_detail", "customer_edit", "contact_add"])
def test_pages_of_a_customer_follow_the_access_rules(cast: Cast, role: str, name: str) -> None:
    customer = rep_customer(cast, name="Alice's Account")
    response = client_for(cast.roles()[role]).get(reverse(f"leads:{name}", args=[customer.pk]))
    assert response.status_code == SEES_REPS_CUSTOMER[role]
    if response.status_code == 200:
        assert "Alice&#x27;s Account" in page(response)


@pytest.mark.parametrize(
    "role, status",
    [("owner_rep", 403), ("manager", 200), ("other_rep", 404), ("marketing", 404), ("admin", 200)],
)
def test_merge_page_is_for_managers_and_admins(cast: Cast, role: str, status: int) -> None:
    customer = rep_customer(cast)
    response = client_for(cast.roles()[role]).get(
        reverse("leads:customer_merge", args=[customer.pk])
    )
    assert response.status_code == status
    if status == 403:
        assert "Only managers and administrators can merge customers." in page(response)


def test_customer_list_shows_each_role_what_it_may_see(cast: Cast) -> None:
    rep_customer(cast, name="Alice Account")
    make_customer(owner=cast.other_rep, name="Charlie Account")
    make_customer(owner=None, name="Unowned Prospect Co")
    expectations = {
        "owner_rep": {"Alice Account"},
        "manager": {"Alice Account"},
        "other_rep": {"Charlie Account"},
        "marketing": {"Unowned Prospect Co"},
        "admin": {"Alice Account", "Charlie Account", "Unowned Prospect Co"},
    }
    every = {"Alice Account", "Charlie Account", "Unowned Prospect Co"}
    for role, user in cast.roles().items():
        response = client_for(user).get(reverse("leads:customer_list"))
        assert response.status_code == 200
        shown = {name for name in every if name in page(response)}
        assert shown == expectations[role], role


def test_create_page_opens_for_every_role(cast: Cast) -> None:
    for role, user in cast.roles().items():
        assert client_for(user).get(reverse("leads:customer_create")).status_code == 200, role


def test_another_teams_rep_cannot_edit_add_contacts_or_merge_by_post(cast: Cast) -> None:
    customer = rep_customer(cast, name="Kept As Is")
    other = make_customer(owner=cast.other_rep)
    client = client_for(cast.other_rep)
    edit = client.post(reverse("leads:customer_edit", args=[customer.pk]), form_data(name="Hacked"))
    contact = client.post(reverse("leads:contact_add", args=[customer.pk]), {"name": "Spy"})
    merge = client.post(
        reverse("leads:customer_merge", args=[customer.pk]), {"other": other.pk, "confirm": "1"}
    )
    assert (edit.status_code, contact.status_code, merge.status_code) == (404, 404, 404)
    customer.refresh_from_db()
    assert customer.name == "Kept As Is"
    assert not customer.contacts.exists()
    assert Customer.objects.filter(pk=other.pk).exists()


def test_marketing_sees_an_unowned_customer_without_estimates_or_deals(cast: Cast) -> None:
    customer = make_customer(owner=None, name="Fresh From The Fair")
    EstimateFactory(customer=customer, owner=cast.rep)
    response = client_for(cast.marketing).get(reverse("leads:customer_detail", args=[customer.pk]))
    assert response.status_code == 200
    body = page(response)
    assert "Fresh From The Fair" in body
    assert 'data-testid="estimates"' not in body and 'data-testid="deals"' not in body
    assert reverse("leads:estimate_create") not in body


# --- List ---------------------------------------------------------------------------------


def test_customer_list_searches_name_email_and_phone(cast: Cast) -> None:
    rep_customer(cast, name="Nordic Steel AB", email="buy@nordic.example", phone="+46 70-123 45 67")
    rep_customer(cast, name="Baltic Wood", email="info@baltic.example", phone="08 555 000")
    client = client_for(cast.rep)

    def names(query: str) -> set[str]:
        body = page(client.get(reverse("leads:customer_list"), {"q": query}))
        return {name for name in ("Nordic Steel AB", "Baltic Wood") if name in body}

    assert names("nordic") == {"Nordic Steel AB"}
    assert names("INFO@baltic") == {"Baltic Wood"}
    assert names("070 123") == set()  # a trunk 0 is part of what was typed
    assert names("70-123") == {"Nordic Steel AB"}
    assert names("555") == {"Baltic Wood"}
    assert "No customer matches your search." in page(
        client.get(reverse("leads:customer_list"), {"q": "nothing like it"})
    )


def test_customer_list_paginates_and_survives_bad_page_numbers(cast: Cast) -> None:
    for number in range(27):
        rep_customer(cast, name=f"Customer {number:02d}")
    client = client_for(cast.rep)
    first = page(client.get(reverse("leads:customer_list")))
    assert "Customer 00" in first and "Customer 26" not in first and "Page 1 of 2" in first
    second = page(client.get(reverse("leads:customer_list"), {"page": "2"}))
    assert "Customer 26" in second and "Customer 00" not in second
    for bad in ("abc", "-1", "999"):
        assert client.get(reverse("leads:customer_list"), {"page": bad}).status_code == 200


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_customer_list_query_count_does_not_grow(cast: Cast) -> None:
    """Expected queries: session, user, the manager's team/member ids, COUNT of the
    customers, the page of customers (with their owners joined)."""
    client = client_for(cast.manager)
    rep_customer(cast)
    url = reverse("leads:customer_list")
    before = count_queries(client, url)
    rep_customer(cast)
    make_customer(owner=cast.teammate)
    assert count_queries(client, url) == before == 5


# --- Full view ----------------------------------------------------------------------------


def history(cast: Cast, customer: Customer, owner: User) -> None:
    """One of each kind of history row on ``customer``."""
    line = ProductLineFactory()
    lead = LeadFactory(owner=owner, customer=customer)
    Contact.objects.create(customer=customer, name="Contact Person")
    estimate = EstimateFactory(customer=customer, owner=owner, product_line=line, lead=lead)
    deal = DealFactory(customer=customer, owner=owner, product_line=line, lead=lead)
    ActivityFactory(customer=customer, owner=owner, lead=lead, deal=deal)
    assert estimate.pk


def test_customer_page_shows_the_whole_history(cast: Cast) -> None:
    customer = rep_customer(cast, name="Full View AB", extra={"VAT": "SE556677"})
    lead = LeadFactory(owner=cast.rep, customer=customer, contact_name="Eva Buyer")
    Contact.objects.create(customer=customer, name="Erik Contact", is_primary=True)
    line = ProductLineFactory(name="Forklifts")
    EstimateFactory(customer=customer, owner=cast.rep, product_line=line, title="Q-17 forklifts")
    DealFactory(customer=customer, owner=cast.rep, product_line=line, title="Forklift deal")
    ActivityFactory(customer=customer, owner=cast.rep, lead=lead, subject="Called about fleet")
    # History of the same customer that the rep may not see stays hidden.
    EstimateFactory(customer=customer, owner=cast.other_rep, title="Secret southern quote")
    LeadFactory(owner=cast.other_rep, customer=customer, contact_name="Hidden Harry")
    ActivityFactory(customer=customer, owner=cast.other_rep, subject="Southern call")

    body = page(client_for(cast.rep).get(reverse("leads:customer_detail", args=[customer.pk])))
    for text in (
        "Erik Contact",
        "Eva Buyer",
        "Q-17 forklifts",
        "Forklift deal",
        "Called about fleet",
        "VAT",
        "SE556677",
    ):
        assert text in body, text
    assert "Secret southern quote" not in body
    assert "Hidden Harry" not in body and "Southern call" not in body


def test_customer_page_caps_each_list_and_tells_the_total(cast: Cast) -> None:
    customer = rep_customer(cast)
    for number in range(12):
        ActivityFactory(customer=customer, owner=cast.rep, subject=f"Touch {number}")
    body = page(client_for(cast.rep).get(reverse("leads:customer_detail", args=[customer.pk])))
    assert body.count('data-testid="activity"') == 10
    assert "Showing 10 of 12." in body


def test_customer_page_query_count_does_not_grow_with_history(cast: Cast) -> None:
    """Expected queries: session, user, the manager's team and member ids, the customer
    (owner and territory joined), then one query per list, rows and total together:
    contacts, leads, activities, estimates, deals; and the satisfaction section: its
    surveys and its cases (feedback.selectors.customer_feedback)."""
    customer = rep_customer(cast)
    history(cast, customer, cast.rep)
    client = client_for(cast.manager)
    url = reverse("leads:customer_detail", args=[customer.pk])
    before = count_queries(client, url)
    history(cast, customer, cast.rep)
    history(cast, customer, cast.teammate)
    assert count_queries(client, url) == before == 11


# --- Create and duplicates -----------------------------------------------------------------


def test_rep_creates_a_customer_with_extra_fields(cast: Cast) -> None:
    response = client_for(cast.rep).post(
        reverse("leads:customer_create"),
        form_data(
            name="Nordic Steel AB",
            email="Buy@Nordic.example",
            phone="+46 70-123 45 67",
            extra="VAT number: SE556677889901\nWebsite: https://nordic.example\n\n",
        ),
    )
    customer = Customer.objects.get(name="Nordic Steel AB")
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:customer_detail", args=[customer.pk])
    assert customer.owner == cast.rep
    assert customer.email == "buy@nordic.example"
    assert customer.phone_normalised == "46701234567"
    assert customer.extra == {"VAT number": "SE556677889901", "Website": "https://nordic.example"}


@pytest.mark.parametrize(
    "existing, typed, reason",
    [
        ({"email": "buy@nordic.example"}, {"email": "BUY@nordic.example"}, "the same email"),
        ({"phone": "+46 70-123 45 67"}, {"phone": "0046701234567"}, "the same phone number"),
        ({"name": "Nordic Steel AB"}, {"name": "NORDIC steel ab"}, "the same name"),
    ],
)
def test_duplicate_warning_links_to_a_visible_customer(
    cast: Cast, existing: dict[str, str], typed: dict[str, str], reason: str
) -> None:
    found = rep_customer(cast, **{"name": "Existing One", "email": "", "phone": "", **existing})
    client = client_for(cast.rep)
    data = form_data(
        name=typed.get("name", "Brand New Name"),
        **{key: value for key, value in typed.items() if key != "name"},
    )
    response = client.post(reverse("leads:customer_create"), data)
    body = page(response)
    assert response.status_code == 200
    assert 'data-testid="duplicates"' in body
    assert f'href="{reverse("leads:customer_detail", args=[found.pk])}"' in body
    assert reason in body
    assert 'name="create_anyway"' in body
    assert Customer.objects.count() == 1

    response = client.post(reverse("leads:customer_create"), {**data, "create_anyway": "on"})
    assert response.status_code == 302
    assert Customer.objects.count() == 2


def test_duplicate_in_another_team_is_told_without_a_link(cast: Cast) -> None:
    hidden = make_customer(owner=cast.other_rep, name="Southern Secret", email="x@south.example")
    response = client_for(cast.rep).post(
        reverse("leads:customer_create"), form_data(name="Mine", email="X@south.example")
    )
    body = page(response)
    assert "A customer with this email exists in another team." in body
    assert reverse("leads:customer_detail", args=[hidden.pk]) not in body
    assert "Southern Secret" not in body
    assert not Customer.objects.filter(name="Mine").exists()


def test_unticked_create_anyway_warns_again_and_saves_nothing(cast: Cast) -> None:
    rep_customer(cast, name="Nordic Steel AB")
    client = client_for(cast.rep)
    data = form_data(name="nordic steel ab")
    client.post(reverse("leads:customer_create"), data)
    # The box is shown but left unticked: the browser sends no create_anyway at all.
    response = client.post(reverse("leads:customer_create"), data)
    assert 'data-testid="duplicates"' in page(response)
    assert Customer.objects.count() == 1


def test_edit_warns_about_a_duplicate_only_on_what_changed(cast: Cast) -> None:
    first = rep_customer(cast, name="Alpha", email="alpha@example.com")
    rep_customer(cast, name="Beta", email="beta@example.com")
    twin = rep_customer(cast, name="Alpha", email="twin@example.com")  # saved "anyway" earlier
    client = client_for(cast.rep)
    url = reverse("leads:customer_edit", args=[twin.pk])

    response = client.post(url, form_data(name="Alpha", email="twin@example.com", city="Lund"))
    assert response.status_code == 302  # the old name clash is not news
    twin.refresh_from_db()
    assert twin.city == "Lund"

    response = client.post(url, form_data(name="Alpha", email="beta@example.com"))
    assert 'data-testid="duplicates"' in page(response)
    twin.refresh_from_db()
    assert twin.email == "twin@example.com"
    assert first.pk


def test_extra_fields_errors_are_clear_and_save_nothing(cast: Cast) -> None:
    customer = rep_customer(cast, name="Keep Me", extra={"VAT": "1"})
    response = client_for(cast.rep).post(
        reverse("leads:customer_edit", args=[customer.pk]),
        form_data(name="Renamed", extra="VAT: 2\njust some words\nvat: 3\n: empty name"),
    )
    body = page(response)
    assert response.status_code == 200
    assert "Line 2: write it as name: value" in body
    assert "Line 3: “vat” is given twice." in body
    assert "Line 4: write it as name: value" in body
    customer.refresh_from_db()
    assert (customer.name, customer.extra) == ("Keep Me", {"VAT": "1"})


def test_edit_form_shows_extra_as_lines_and_saves_changes(cast: Cast) -> None:
    customer = rep_customer(cast, extra={"VAT": "SE1", "Employees": 40})
    client = client_for(cast.rep)
    url = reverse("leads:customer_edit", args=[customer.pk])
    body = page(client.get(url))
    assert "VAT: SE1\nEmployees: 40" in body
    client.post(url, form_data(name=customer.name, email=customer.email, extra="VAT: SE2"))
    customer.refresh_from_db()
    assert customer.extra == {"VAT": "SE2"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": ""},
        {"email": "not an email"},
        {"language": "klingon"},
        {"kind": "robot"},
        {"territory": "999999"},
        {"name": "x" * 300},
    ],
)
def test_bad_customer_input_is_refused_without_saving(
    cast: Cast, overrides: dict[str, str]
) -> None:
    response = client_for(cast.rep).post(reverse("leads:customer_create"), form_data(**overrides))
    assert response.status_code == 200
    assert "is-invalid" in page(response)
    assert not Customer.objects.exists()


def test_manager_gives_a_customer_to_a_team_member_only(cast: Cast) -> None:
    client = client_for(cast.manager)
    client.post(
        reverse("leads:customer_create"), form_data(name="For Bob", owner=str(cast.teammate.pk))
    )
    assert Customer.objects.get(name="For Bob").owner == cast.teammate
    response = client.post(
        reverse("leads:customer_create"),
        form_data(name="For Charlie", owner=str(cast.other_rep.pk)),
    )
    assert response.status_code == 200
    assert not Customer.objects.filter(name="For Charlie").exists()


# --- Contacts ------------------------------------------------------------------------------


def test_contact_is_added_and_a_new_primary_replaces_the_old(cast: Cast) -> None:
    customer = rep_customer(cast)
    Contact.objects.create(customer=customer, name="Old Primary", is_primary=True)
    client = client_for(cast.rep)
    response = client.post(
        reverse("leads:contact_add", args=[customer.pk]),
        {"name": "Nina New", "email": "NINA@x.example", "language": "it", "is_primary": "on"},
    )
    assert response.status_code == 302
    nina = customer.contacts.get(name="Nina New")
    assert nina.is_primary and nina.email == "nina@x.example"
    assert not customer.contacts.get(name="Old Primary").is_primary

    bad = client.post(reverse("leads:contact_add", args=[customer.pk]), {"email": "nope"})
    assert bad.status_code == 200 and "is-invalid" in page(bad)
    assert customer.contacts.count() == 2


# --- Merge -----------------------------------------------------------------------------------


def test_manager_merges_two_customers_keeping_all_history(cast: Cast) -> None:
    keep = rep_customer(cast, name="Nordic Steel AB", email="", phone="", extra={"VAT": "SE1"})
    merge = make_customer(
        owner=cast.teammate,
        name="Nordic Steel",
        email="buy@nordic.example",
        phone="+46 70 123",
        city="Luleå",
        extra={"VAT": "ignored", "Website": "https://nordic.example"},
    )
    lead = LeadFactory(owner=cast.teammate, customer=merge)
    estimate = EstimateFactory(customer=merge, owner=cast.teammate)
    deal = DealFactory(customer=merge, owner=cast.teammate)
    activity = ActivityFactory(customer=merge, owner=cast.teammate)
    contact = Contact.objects.create(customer=merge, name="Moved Contact")
    client = client_for(cast.manager)
    url = reverse("leads:customer_merge", args=[keep.pk])

    search = page(client.get(url, {"q": "nordic steel"}))
    assert f'name="other" value="{merge.pk}"' in search

    confirm = client.post(url, {"other": merge.pk})
    body = page(confirm)
    assert confirm.status_code == 200
    assert "Merge Nordic Steel into Nordic Steel AB?" in body
    for label in ("1 leads", "1 estimates", "1 deals", "1 activities", "1 contacts"):
        assert label in body, label
    assert "buy@nordic.example" in body and "Luleå" in body and "Website" in body
    assert "Bob Rep" not in body  # the kept customer's owner stays
    assert Customer.objects.filter(pk=merge.pk).exists()  # nothing happened yet

    done = client.post(url, {"other": merge.pk, "confirm": "1"})
    assert done.status_code == 302
    assert done["Location"] == reverse("leads:customer_detail", args=[keep.pk])
    assert not Customer.objects.filter(pk=merge.pk).exists()
    for model, pk in (
        (Lead, lead.pk),
        (Estimate, estimate.pk),
        (Deal, deal.pk),
        (Activity, activity.pk),
        (Contact, contact.pk),
    ):
        assert model.objects.get(pk=pk).customer_id == keep.pk, model
    keep.refresh_from_db()
    assert keep.email == "buy@nordic.example"
    assert keep.city == "Luleå"
    assert keep.extra == {"VAT": "SE1", "Website": "https://nordic.example"}
    assert keep.owner == cast.rep
    shown = page(client.get(done["Location"]))
    assert "was merged into Nordic Steel AB" in shown


def test_merge_refuses_a_customer_the_manager_cannot_see(cast: Cast) -> None:
    keep = rep_customer(cast)
    southern = make_customer(owner=cast.other_rep)
    response = client_for(cast.manager).post(
        reverse("leads:customer_merge", args=[keep.pk]), {"other": southern.pk, "confirm": "1"}
    )
    assert response.status_code == 200
    assert "Choose a customer you can see, other than this one." in page(response)
    assert Customer.objects.filter(pk=southern.pk).exists()


@pytest.mark.parametrize("other", ["", "abc", "self"])
def test_merge_with_bad_input_changes_nothing(cast: Cast, other: str) -> None:
    keep = rep_customer(cast)
    value = str(keep.pk) if other == "self" else other
    response = client_for(cast.admin).post(
        reverse("leads:customer_merge", args=[keep.pk]), {"other": value, "confirm": "1"}
    )
    assert response.status_code == 200
    assert 'data-testid="merge-errors"' in page(response)
    assert Customer.objects.filter(pk=keep.pk).exists()


def test_rep_cannot_merge_even_their_own_customers(cast: Cast) -> None:
    keep = rep_customer(cast)
    merge = rep_customer(cast)
    response = client_for(cast.rep).post(
        reverse("leads:customer_merge", args=[keep.pk]), {"other": merge.pk, "confirm": "1"}
    )
    assert response.status_code == 403
    assert Customer.objects.filter(pk=merge.pk).exists()


def test_merge_page_suggests_look_alikes(cast: Cast) -> None:
    keep = rep_customer(cast, name="Nordic Steel AB", email="buy@nordic.example")
    twin = make_customer(owner=cast.teammate, name="N. Steel", email="BUY@nordic.example")
    hidden_twin = make_customer(owner=cast.other_rep, name="Hidden", email="buy@nordic.example")
    body = page(client_for(cast.manager).get(reverse("leads:customer_merge", args=[keep.pk])))
    assert f'name="other" value="{twin.pk}"' in body
    assert f'name="other" value="{hidden_twin.pk}"' not in body


def test_money_on_the_customer_page_uses_the_base_currency(cast: Cast, settings: object) -> None:
    settings.BASE_CURRENCY = "SEK"  # type: ignore[attr-defined]
    customer = rep_customer(cast)
    EstimateFactory(customer=customer, owner=cast.rep, amount=Decimal("1234567.50"))
    body = page(client_for(cast.rep).get(reverse("leads:customer_detail", args=[customer.pk])))
    assert "1,234,567.50 SEK" in body


def test_lead_stage_is_shown_on_the_customer_page(cast: Cast) -> None:
    customer = rep_customer(cast)
    LeadFactory(owner=cast.rep, customer=customer, stage=Stage.SQL)
    body = page(client_for(cast.rep).get(reverse("leads:customer_detail", args=[customer.pk])))
    assert "SQL" in body
