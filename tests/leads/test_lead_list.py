"""The lead list: scope per role, filters, search, sort, pagination, bulk actions, queries."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from leads import services
from leads.filters import leads_filtered, search_condition
from leads.models import Lead, LeadEventKind, LeadSource, LostReason, Stage, Temperature
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory
from tests.factories_leads import LeadFactory

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")


def page(client: Client, **params: Any) -> str:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return response.content.decode()


def listed(client: Client, **params: Any) -> list[int]:
    """The lead ids in the table, in order."""
    html = page(client, **params)
    table = (
        html.split('data-testid="lead-table"', 1)[1].split("</table>", 1)[0]
        if ('data-testid="lead-table"' in html)
        else ""
    )
    return [int(pk) for pk in re.findall(r'name="ids" value="(\d+)"', table)]


def lead(owner: User | None, **kwargs: Any) -> Lead:
    return LeadFactory(owner=owner, **kwargs)


@pytest.fixture
def leads(cast: Cast) -> dict[str, Lead]:
    """One lead per situation the access rules tell apart."""
    return {
        "rep": lead(cast.rep, company_name="Alice Co", stage=Stage.SQL),
        "teammate": lead(cast.teammate, company_name="Bob Co", stage=Stage.SQL),
        "other": lead(cast.other_rep, company_name="Charlie Co", stage=Stage.SQL),
        "rep_marketing_stage": lead(cast.rep, company_name="Warm Alice Co", stage=Stage.WARM),
        "unassigned": lead(None, company_name="Nobody Co", stage=Stage.SUSPECT),
        "handed_north": lead(None, company_name="Handed Co", stage=Stage.MQL, team=cast.team),
    }


# --- Scope ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("owner_rep", {"rep", "rep_marketing_stage"}),
        ("manager", {"rep", "teammate", "rep_marketing_stage", "handed_north"}),
        ("other_rep", {"other"}),
        ("marketing", {"rep_marketing_stage", "unassigned", "handed_north"}),
        (
            "admin",
            {"rep", "teammate", "other", "rep_marketing_stage", "unassigned", "handed_north"},
        ),
    ],
)
def test_each_role_lists_only_the_leads_it_may_see(
    cast: Cast, leads: dict[str, Lead], role: str, visible: set[str]
) -> None:
    client = client_for(cast.roles()[role])
    assert set(listed(client)) == {leads[name].pk for name in visible}


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get(LIST)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_list_shows_score_stage_temperature_owner_contact_and_value(cast: Cast) -> None:
    lead(
        cast.rep,
        company_name="Acme",
        contact_name="Anna",
        score=72,
        stage=Stage.HOT,
        temperature=Temperature.HOT,
        estimated_value=Decimal("12500.00"),
        last_contact_at=timezone.now(),
    )
    html = page(client_for(cast.manager))
    row = html.split('data-testid="lead-row"', 1)[1].split("</tr>", 1)[0]
    assert "Anna (Acme)" in row
    assert ">72<" in row and "Hot" in row and "Alice Rep" in row
    assert "12,500.00" in row or "12 500,00" in row or "12500" in row.replace(",", "")
    assert "never" not in row


def test_row_values_are_escaped(cast: Cast) -> None:
    """The rows are written in Python (not an autoescaping template): every value a
    user typed must still come out as text."""
    territory = TerritoryFactory(name="<b>North</b>")
    line = ProductLineFactory(name="Pumps & <i>valves</i>")
    cast.rep.display_name = '"Alice" <Rep>'
    cast.rep.save(update_fields=["display_name"])
    made = lead(
        cast.rep,
        contact_name="<script>alert(1)</script>",
        company_name="O'Brien & Co",
        territory=territory,
    )
    made.product_lines.add(line)
    html = page(client_for(cast.manager))
    row = html.split('data-testid="lead-row"', 1)[1].split("</tr>", 1)[0]
    assert "<script>" not in row and "<b>" not in row and "<i>" not in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (O&#x27;Brien &amp; Co)" in row
    assert "&lt;b&gt;North&lt;/b&gt;" in row and "Pumps &amp; &lt;i&gt;valves&lt;/i&gt;" in row
    assert "&quot;Alice&quot; &lt;Rep&gt;" in row


def test_filters_show_the_values_in_use(cast: Cast) -> None:
    north = TerritoryFactory(name="North")
    TerritoryFactory(name="South")
    lead(cast.rep, stage=Stage.SQL, territory=north)
    html = page(
        client_for(cast.manager),
        stage=["sql", "mql"],
        temperature="hot",
        territory=north.pk,
        owner=cast.rep.pk,
        score_min=5,
        sort="-score",
    )
    filters = html.split('id="lead-filters"', 1)[1].split("</aside>", 1)[0]
    assert re.search(r'<input type="checkbox"[^>]*value="sql"[^>]*checked', filters)
    assert re.search(r'<input type="checkbox"[^>]*value="mql"[^>]*checked', filters)
    assert not re.search(r'<input type="checkbox"[^>]*value="hot"[^>]*checked', filters)
    assert '<option value="hot" selected>' in filters
    assert f'<option value="{north.pk}" selected>North</option>' in filters
    assert f'<option value="{cast.rep.pk}" selected>' in filters
    assert '<option value="-score" selected>' in filters
    assert re.search(r'<input type="number" name="score_min" value="5"', filters)
    assert 'form="lead-filter-form"' in filters
    # A field with an error is shown the way crispy shows errors.
    html = page(client_for(cast.manager), score_min="lots")
    filters = html.split('id="lead-filters"', 1)[1].split("</aside>", 1)[0]
    assert "is-invalid" in filters and "The score is a whole number from 0 to 100." in filters


def test_empty_list_invites_to_create_a_lead(cast: Cast) -> None:
    html = page(client_for(cast.rep))
    assert "No leads yet" in html and reverse("leads:create") in html


def test_no_match_offers_to_clear_the_filters(cast: Cast) -> None:
    lead(cast.rep, stage=Stage.SUSPECT)
    html = page(client_for(cast.rep), stage="sql")
    assert "No leads match these filters." in html and "Clear the filters" in html


# --- Filters ----------------------------------------------------------------------


def test_filter_by_stages_temperature_and_source(cast: Cast) -> None:
    hot = lead(cast.rep, stage=Stage.HOT, temperature=Temperature.HOT, source=LeadSource.REFERRAL)
    mql = lead(cast.rep, stage=Stage.MQL, temperature=Temperature.WARM, source=LeadSource.WEBINAR)
    lead(cast.rep, stage=Stage.SUSPECT, temperature=Temperature.COLD, source=LeadSource.WEBINAR)
    client = client_for(cast.rep)
    assert set(listed(client, stage=["hot", "mql"])) == {hot.pk, mql.pk}
    assert listed(client, temperature="warm") == [mql.pk]
    assert listed(client, source=LeadSource.REFERRAL) == [hot.pk]


def test_filter_by_owner_and_unassigned_within_the_managers_scope(
    cast: Cast, leads: dict[str, Lead]
) -> None:
    client = client_for(cast.manager)
    assert listed(client, owner=cast.teammate.pk) == [leads["teammate"].pk]
    assert listed(client, owner="none") == [leads["handed_north"].pk]


def test_owner_choices_only_show_people_the_user_may_see(
    cast: Cast, leads: dict[str, Lead]
) -> None:
    html = page(client_for(cast.manager))
    owner_select = html.split('name="owner"', 1)[1].split("</select>", 1)[0]
    assert "Bob Rep" in owner_select and "Alice Rep" in owner_select
    assert "Charlie Rep" not in owner_select
    # A forged owner of another team is refused with a message, and shows nothing of theirs.
    html = page(client_for(cast.manager), owner=cast.other_rep.pk)
    assert "Choose an owner from the list." in html
    assert "Charlie Co" not in html


def test_reps_get_no_owner_filter(cast: Cast) -> None:
    lead(cast.rep)
    html = page(client_for(cast.rep))
    filters = html.split('id="lead-filters"', 1)[1].split("</aside>", 1)[0]
    assert 'name="owner"' not in filters


def test_filter_by_territory_product_line_and_score_range(cast: Cast) -> None:
    north, south = TerritoryFactory(name="Norrland"), TerritoryFactory(name="Skåne")
    hardware = ProductLineFactory(name="Hardware")
    a = lead(cast.rep, territory=north, score=80)
    b = lead(cast.rep, territory=south, score=40)
    c = lead(cast.rep, territory=north, score=10)
    b.product_lines.add(hardware)
    c.product_lines.add(hardware)
    client = client_for(cast.rep)
    assert set(listed(client, territory=north.pk)) == {a.pk, c.pk}
    assert set(listed(client, product_line=hardware.pk)) == {b.pk, c.pk}
    assert set(listed(client, score_min=30, score_max=80)) == {a.pk, b.pk}
    assert listed(client, score_min=81) == []


def test_no_contact_for_n_days_includes_never_contacted(cast: Cast) -> None:
    now = timezone.now()
    recent = lead(cast.rep, last_contact_at=now - dt.timedelta(days=2))
    stale = lead(cast.rep, last_contact_at=now - dt.timedelta(days=20))
    never = lead(cast.rep, last_contact_at=None)
    client = client_for(cast.rep)
    assert set(listed(client, no_contact_days=14)) == {stale.pk, never.pk}
    assert set(listed(client, no_contact_days=1)) == {recent.pk, stale.pk, never.pk}


# --- Search -----------------------------------------------------------------------


def test_search_by_name_prefix_company_email_and_phone(cast: Cast) -> None:
    anna = lead(
        cast.rep,
        contact_name="Anna Svensson",
        company_name="Nordic Pumps",
        email="anna.svensson@pumps.example",
        phone="+46 70-123 45 67",
        phone_normalised="46701234567",
    )
    other = lead(cast.rep, contact_name="Annika Berg", company_name="Berg Bygg", email="ab@x.se")
    lead(cast.other_rep, contact_name="Anna Svensson", company_name="Secret AB")
    client = client_for(cast.rep)
    assert set(listed(client, q="ann")) == {anna.pk, other.pk}
    assert listed(client, q="anna svens") == [anna.pk]
    assert listed(client, q="Svensson ANNA") == [anna.pk]
    assert listed(client, q="nordic") == [anna.pk]
    assert listed(client, q="ANNA.Svensson@Pumps.example") == [anna.pk]
    assert listed(client, q="+46 70 123") == [anna.pk]
    assert listed(client, q="berg") == [other.pk]
    # Another team's Anna stays out of the rep's search.
    assert listed(client, q="secret") == []


def test_search_terms_cannot_inject_tsquery_syntax(cast: Cast) -> None:
    anna = lead(cast.rep, contact_name="Anna Svensson")
    client = client_for(cast.rep)
    for query in ["anna & !svensson", "anna:* | x", "'anna'", "anna\\", "(anna)", "anna <-> x"]:
        response = client.get(LIST, {"q": query})
        assert response.status_code == 200, query
    assert listed(client, q="(anna)") == [anna.pk]
    html = page(client, q="!!! ***")
    assert "Search for letters or digits" in html


def test_search_uses_the_full_text_index_not_a_substring_scan() -> None:
    condition = search_condition("anna svens")
    assert "'anna':* & 'svens':*" in str(condition)
    sql = str(Lead.objects.filter(condition).query)
    assert "@@" in sql and "LIKE" not in sql.upper()
    email_sql = str(Lead.objects.filter(search_condition("A@B.se")).query)
    assert 'LOWER("leads_lead"."email") = a@b.se' in email_sql


# --- Sort -------------------------------------------------------------------------


def test_sorts_by_score_value_last_contact_stage_and_created(cast: Cast) -> None:
    now = timezone.now()
    a = lead(cast.rep, score=10, estimated_value=Decimal(500), stage=Stage.SQL, last_contact_at=now)
    b = lead(cast.rep, score=90, estimated_value=None, stage=Stage.SUSPECT, last_contact_at=None)
    c = lead(
        cast.rep,
        score=50,
        estimated_value=Decimal(900),
        stage=Stage.MQL,
        last_contact_at=now - dt.timedelta(days=9),
    )
    client = client_for(cast.rep)
    assert listed(client) == [c.pk, b.pk, a.pk]  # newest first
    assert listed(client, sort="created") == [a.pk, b.pk, c.pk]
    assert listed(client, sort="-score") == [b.pk, c.pk, a.pk]
    assert listed(client, sort="score") == [a.pk, c.pk, b.pk]
    assert listed(client, sort="-value") == [c.pk, a.pk, b.pk]  # no value last
    assert listed(client, sort="last_contact") == [b.pk, c.pk, a.pk]  # never contacted first
    assert listed(client, sort="-last_contact") == [a.pk, c.pk, b.pk]
    assert listed(client, sort="stage") == [b.pk, c.pk, a.pk]  # pipeline order
    assert listed(client, sort="-stage") == [a.pk, c.pk, b.pk]


def test_sort_outside_the_whitelist_is_ignored_with_a_message(cast: Cast) -> None:
    a, b = lead(cast.rep), lead(cast.rep)
    client = client_for(cast.rep)
    for evil in ["password", "owner__password", "-email", "id); DROP TABLE leads_lead;--"]:
        html = page(client, sort=evil)
        assert "That is not one of the choices; it was ignored." in html
    assert listed(client, sort="owner__password") == [b.pk, a.pk]


# --- Bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"score_min": "lots"}, "The score is a whole number from 0 to 100."),
        ({"score_min": "101"}, "Ensure this value is less than or equal to 100."),
        ({"score_min": "60", "score_max": "20"}, "The upper score must not be below the lower"),
        ({"no_contact_days": "-3"}, "Ensure this value is greater than or equal to 1."),
        ({"no_contact_days": "soon"}, "Give the number of days as a whole number."),
        ({"stage": "winning"}, "Choose stages from the list"),
        ({"temperature": "lukewarm"}, "That is not one of the choices"),
        ({"territory": "999999"}, "Choose a territory from the list."),
        ({"territory": "north"}, "Choose a territory from the list."),
        ({"product_line": "0"}, "Choose a product line from the list."),
        ({"page": "x"}, None),
        ({"page": "-4"}, None),
    ],
)
def test_bad_filter_input_gives_a_message_never_a_500(
    cast: Cast, params: dict[str, str], message: str | None
) -> None:
    mine = lead(cast.rep, stage=Stage.SQL)
    client = client_for(cast.rep)
    response = client.get(LIST, params)
    assert response.status_code == 200
    html = response.content.decode()
    if message:
        assert message in html and 'data-testid="filter-errors"' in html
    # The bad value is left out; the list stays the user's own.
    assert listed(client, **params) == [mine.pk]


# --- Pagination -------------------------------------------------------------------


def links(html: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def table_ids(html: str) -> list[int]:
    table = html.split('data-testid="lead-table"', 1)[1].split("</table>", 1)[0]
    return [int(pk) for pk in re.findall(r'name="ids" value="(\d+)"', table)]


def test_pages_of_fifty_with_a_next_link_and_no_total(cast: Cast) -> None:
    made = [lead(cast.rep) for _ in range(51)]
    newest_first = [made_lead.pk for made_lead in reversed(made)]
    client = client_for(cast.rep)
    html = page(client, stage="suspect")
    assert table_ids(html) == newest_first[:50]
    next_url = links(html, "next")
    assert "page=2" in next_url and "stage=suspect" in next_url  # filters kept
    assert links(html, "prev") is None
    second = client.get(next_url).content.decode()
    assert table_ids(second) == [newest_first[50]]
    assert links(second, "next") is None
    assert "Leads 51\u201351" in second and "Page 2" in second
    assert "of 2" not in second  # no total: it would cost a count over every lead
    first_again = client.get(links(second, "prev")).content.decode()
    assert table_ids(first_again) == newest_first[:50]


@pytest.mark.parametrize(
    "sort",
    [
        "-created",
        "created",
        "-score",
        "score",
        "last_contact",
        "-last_contact",
        "stage",
        "-stage",
        "-value",
        "value",
    ],
)
def test_next_and_previous_walk_every_order_without_gaps_or_repeats(cast: Cast, sort: str) -> None:
    """Keyset cursors over ties (same score, same creation time) and empty values."""
    now = timezone.now()
    stages = [Stage.SUSPECT, Stage.MQL, Stage.SQL]
    for index in range(125):
        lead(
            cast.rep,
            score=index % 4,
            stage=stages[index % 3],
            estimated_value=None if index % 5 == 0 else Decimal(index % 7),
            last_contact_at=None if index % 6 == 0 else now - dt.timedelta(days=index % 9),
        )
    # A batch created "at the same moment", so creation time ties too.
    Lead.objects.filter(pk__in=Lead.objects.order_by("pk").values("pk")[40:90]).update(
        created_at=now
    )
    expected, _form = leads_filtered(user=cast.rep, params={"sort": sort})
    expected_ids = list(expected.values_list("pk", flat=True))
    client = client_for(cast.rep)

    html = page(client, sort=sort)
    pages = [table_ids(html)]
    while next_url := links(html, "next"):
        html = client.get(next_url).content.decode()
        pages.append(table_ids(html))
    assert [len(ids) for ids in pages] == [50, 50, 25]
    assert [pk for ids in pages for pk in ids] == expected_ids

    backwards = [table_ids(html)]
    while previous_url := links(html, "prev"):
        html = client.get(previous_url).content.decode()
        backwards.append(table_ids(html))
    assert backwards == pages[::-1]


def test_a_forged_or_foreign_cursor_falls_back_to_the_page_number(cast: Cast) -> None:
    for index in range(51):
        lead(cast.rep, score=100 - index)
    client = client_for(cast.rep)
    by_score, _form = leads_filtered(user=cast.rep, params={"sort": "score"})
    lowest_first = list(by_score.values_list("pk", flat=True))
    for cursor in ["garbage", "eyJzb3J0IjoiLWNyZWF0ZWQifQ:1:abc"]:
        html = page(client, after=cursor, sort="score")
        assert table_ids(html) == lowest_first[:50]
    # A cursor made for the newest-first order is not applied to the score order:
    # page 2 of the score order is shown instead.
    next_url = links(page(client), "next")
    html = client.get(next_url + "&sort=score").content.decode()
    assert table_ids(html) == lowest_first[50:]


def test_a_page_past_the_end_says_so(cast: Cast) -> None:
    lead(cast.rep)
    html = page(client_for(cast.rep), page=7)
    assert "There are no more leads past this page." in html


# --- Query count ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_list_query_count_does_not_grow_with_the_leads(cast: Cast, role: str) -> None:
    """Expected queries (manager; admin the same, its owner choices being everyone):
    1 session, 2 user, 3 owner choices of the filter form, 4 territories, 5 product
    lines (filter form), 6 the page of leads with owner and territory joined,
    7 their product lines (prefetch), 8 owner choices of the bulk form, and for the
    manager 9 team/member ids; for the admin 9 active teams (hand to team) and 10 the estimated
    total (pg_class.reltuples, unfiltered list only)."""
    user = cast.roles()[role]
    client = client_for(user)
    hardware = ProductLineFactory()
    territory = TerritoryFactory()

    def make(count: int) -> None:
        for index in range(count):
            made = lead(cast.rep if index % 2 else cast.teammate, territory=territory)
            made.product_lines.add(hardware)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    make(10)
    with_ten = queries()
    make(90)
    assert queries() == with_ten == {"manager": 9, "admin": 10}[role]


# --- Bulk actions -----------------------------------------------------------------


def bulk(client: Client, ids: list[int], **data: Any) -> str:
    response = client.post(
        reverse("leads:bulk"), {"ids": [str(pk) for pk in ids], "query": "stage=sql", **data}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?stage=sql"
    return client.get(response["Location"]).content.decode()


def test_manager_bulk_assigns_within_the_team_and_invisible_ids_are_ignored(
    cast: Cast, leads: dict[str, Lead]
) -> None:
    client = client_for(cast.manager)
    html = bulk(
        client,
        [leads["rep"].pk, leads["handed_north"].pk, leads["other"].pk, 99999999],
        action="assign",
        owner=cast.teammate.pk,
    )
    assert "2 lead(s) assigned to Bob Rep." in html
    assert "2 ticked lead(s) are not visible to you and were ignored." in html
    assert Lead.objects.get(pk=leads["rep"].pk).owner == cast.teammate
    assert Lead.objects.get(pk=leads["handed_north"].pk).owner == cast.teammate
    assert Lead.objects.get(pk=leads["other"].pk).owner == cast.other_rep
    event = Lead.objects.get(pk=leads["rep"].pk).events.get(kind=LeadEventKind.OWNER)
    assert (event.from_value, event.to_value, event.actor) == ("Alice Rep", "Bob Rep", cast.manager)


def test_bulk_assign_outside_the_managers_teams_is_refused_with_the_reason(
    cast: Cast, leads: dict[str, Lead]
) -> None:
    client = client_for(cast.manager)
    html = bulk(client, [leads["rep"].pk], action="assign", owner=cast.other_rep.pk)
    assert "Choose an owner from your teams." in html
    assert Lead.objects.get(pk=leads["rep"].pk).owner == cast.rep


def test_admin_bulk_assign_to_marketing_shows_the_services_refusal(
    cast: Cast, leads: dict[str, Lead]
) -> None:
    # Marketing is not an owner choice; a rep who became inactive after the page was shown is.
    client = client_for(cast.admin)
    html = client.get(LIST).content.decode()
    assert f'value="{cast.other_rep.pk}"' in html.split('name="owner"')[-1].split("</select>")[0]
    User.objects.filter(pk=cast.other_rep.pk).update(is_active=False)
    html = bulk(client, [leads["rep"].pk], action="assign", owner=cast.other_rep.pk)
    assert "Choose an owner from your teams." in html  # inactive: no longer a choice
    assert Lead.objects.get(pk=leads["rep"].pk).owner == cast.rep


def test_reps_cannot_bulk_assign(cast: Cast, leads: dict[str, Lead]) -> None:
    client = client_for(cast.rep)
    html = client.get(LIST).content.decode()
    assert 'value="assign"' not in html
    html = bulk(client, [leads["rep"].pk], action="assign", owner=cast.rep.pk)
    assert "That action is not available to you." in html


def test_bulk_stage_change_moves_each_lead_and_reports_the_refused_one(cast: Cast) -> None:
    first = services.lead_create(actor=cast.rep, source=LeadSource.WEBINAR, contact_name="One")
    second = services.lead_create(actor=cast.rep, source=LeadSource.WEBINAR, contact_name="Two")
    mql = services.lead_create(
        actor=cast.rep, source=LeadSource.WEBINAR, contact_name="Three", stage=Stage.MQL
    )
    html = bulk(client_for(cast.rep), [first.pk, second.pk, mql.pk], action="stage", to="cold")
    assert "2 lead(s) moved to Cold." in html
    assert f"Not changed: #{mql.pk} Three. A lead cannot go from MQL to Cold." in html
    assert Lead.objects.get(pk=first.pk).stage == Stage.COLD
    assert Lead.objects.get(pk=second.pk).stage == Stage.COLD
    assert Lead.objects.get(pk=mql.pk).stage == Stage.MQL
    assert Lead.objects.get(pk=first.pk).events.filter(kind=LeadEventKind.STAGE).exists()


def test_bulk_disqualify_needs_a_listed_reason(cast: Cast) -> None:
    one = services.lead_create(actor=cast.rep, source=LeadSource.WEBINAR, contact_name="One")
    client = client_for(cast.rep)
    html = bulk(client, [one.pk], action="stage", to="disqualified")
    assert "Choose the reason from the list." in html
    assert Lead.objects.get(pk=one.pk).stage == Stage.SUSPECT
    html = bulk(
        client, [one.pk], action="stage", to="disqualified", lost_reason=LostReason.NO_BUDGET
    )
    assert "1 lead(s) moved to Disqualified." in html
    one.refresh_from_db()
    assert (one.stage, one.lost_reason) == (Stage.DISQUALIFIED, LostReason.NO_BUDGET)


def test_marketing_hands_mql_leads_to_a_team_in_bulk(cast: Cast) -> None:
    mql = services.lead_create(
        actor=cast.marketing, source=LeadSource.WEBINAR, contact_name="Ready", stage=Stage.MQL
    )
    early = services.lead_create(
        actor=cast.marketing, source=LeadSource.WEBINAR, contact_name="Early"
    )
    client = client_for(cast.marketing)
    assert 'value="hand"' in client.get(LIST).content.decode()
    html = bulk(client, [mql.pk, early.pk], action="hand", team=cast.other_team.pk)
    assert "1 lead(s) handed to South." in html
    assert "Only a marketing-qualified lead (MQL) can be handed to a team." in html
    assert Lead.objects.get(pk=mql.pk).team == cast.other_team
    assert Lead.objects.get(pk=early.pk).team is None
    # The manager of South now sees it; the manager of North does not.
    assert mql.pk in listed(client_for(cast.other_manager))
    assert mql.pk not in listed(client_for(cast.manager))


def test_bulk_without_ticked_leads_says_so(cast: Cast) -> None:
    html = bulk(client_for(cast.rep), [], action="stage", to="cold")
    assert "Tick at least one lead first." in html


def test_bulk_redirect_keeps_only_a_query_string(cast: Cast) -> None:
    response = client_for(cast.rep).post(
        reverse("leads:bulk"), {"ids": ["1"], "query": "//evil.example/\r\nX: y", "action": "x"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LIST}?")
    assert "\n" not in response["Location"]
