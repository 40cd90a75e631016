"""The shell pages as each role sees them: home, profile, language, admin."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ProductLine, Role, Territory, User
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_home_shows_each_role_its_team_and_role(cast: Cast) -> None:
    ProductLineFactory(name="Hardware")
    page = client_for(cast.rep).get(reverse("home")).content.decode()
    assert "Sales rep" in page and "North" in page and "Bob Rep" in page
    assert "Charlie Rep" not in page and "South" not in page
    assert "Hardware" in page

    page = client_for(cast.manager).get(reverse("home")).content.decode()
    assert "Your teams" in page and "Alice Rep" in page and "Bob Rep" in page
    assert "Charlie Rep" not in page

    page = client_for(cast.other_rep).get(reverse("home")).content.decode()
    assert "South" in page and "Alice Rep" not in page

    page = client_for(cast.marketing).get(reverse("home")).content.decode()
    assert "Marketing" in page and "Marketing works across teams" in page
    assert "Alice Rep" not in page

    page = client_for(cast.admin).get(reverse("home")).content.decode()
    assert "North" in page and "South" in page and "Open administration" in page


def test_navigation_depends_on_the_role(cast: Cast) -> None:
    admin_link = f'href="{reverse("admin:index")}"'
    for role, user in cast.roles().items():
        page = client_for(user).get(reverse("home")).content.decode()
        assert (admin_link in page) == (role == "admin"), role


def test_navigation_groups_the_less_used_sections_in_menus(cast: Cast) -> None:
    from django.test import RequestFactory

    from accounts.context_processors import navigation

    def menu_of(user: object) -> dict[str, list[str]]:
        request = RequestFactory().get(reverse("leads:deal_list"))
        request.user = user
        menus: dict[str, list[str]] = {}
        for item in navigation(request)["nav_items"]:
            children = item.get("children")
            menus[str(item["label"])] = [str(c["label"]) for c in children] if children else []
        return menus

    rep = menu_of(cast.rep)
    assert "Leads" in rep and rep["Leads"] == []
    assert rep["Pipeline"][:2] == ["Estimates", "Deals"]
    marketing = menu_of(cast.marketing)
    assert "Estimates" not in marketing["Pipeline"] and "Import" in marketing["Pipeline"]
    assert "Administration" in menu_of(cast.admin) and "Administration" not in rep
    page = client_for(cast.rep).get(reverse("leads:deal_list")).content.decode()
    assert 'class="nav-link dropdown-toggle active"' in page  # the open page's menu is marked


def test_people_without_a_team_get_a_clear_empty_state(cast: Cast) -> None:
    loner = UserFactory(display_name="Lone Rep")
    page = client_for(loner).get(reverse("home")).content.decode()
    assert "You are not in a team yet" in page
    fresh_manager = UserFactory(role=Role.MANAGER)
    page = client_for(fresh_manager).get(reverse("home")).content.decode()
    assert "You do not manage a team yet" in page


def test_home_query_count_does_not_grow_with_the_team(cast: Cast) -> None:
    """Expected queries: session, user, teams, team members, team managers,
    user's territories, product lines, then the follow-up case alerts: the
    manager's team and member ids and the open/overdue case counts; then the
    manager's own open reminders (fewer than ten: no count)."""
    client = client_for(cast.manager)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("home")).status_code == 200
        return len(queries)

    before = count()
    for _ in range(5):
        UserFactory(team=cast.team)
    TerritoryFactory()
    assert count() == before == 10


def test_home_lists_the_users_own_reminders_for_sales_roles(cast: Cast) -> None:
    from tests.reminders.helpers import reminder_for

    reminder_for(cast.rep, title="Call back Acme")
    reminder_for(cast.teammate, title="Bob private business")
    page = client_for(cast.rep).get(reverse("home")).content.decode()
    assert "Call back Acme" in page and "Bob private business" not in page
    assert reverse("goals:dashboard") in page
    marketing = client_for(cast.marketing).get(reverse("home")).content.decode()
    assert 'data-testid="reminder-panel"' not in marketing


def test_profile_saves_language_and_time_zone(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("profile"),
        {"display_name": "Alice R.", "language": "sv", "time_zone": "America/Sao_Paulo"},
    )
    assert response.status_code == 302
    cast.rep.refresh_from_db()
    assert (cast.rep.display_name, cast.rep.language, cast.rep.time_zone) == (
        "Alice R.",
        "sv",
        "America/Sao_Paulo",
    )
    # The app now speaks Swedish to her.
    page = client.get(reverse("profile"))
    assert page.headers["Content-Language"] == "sv"


def test_profile_rejects_bad_input_and_keeps_the_old_values(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("profile"), {"display_name": "", "language": "xx", "time_zone": "Mars/Base"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "This field is required." in page
    assert "Select a valid choice." in page
    cast.rep.refresh_from_db()
    assert cast.rep.display_name == "Alice Rep"


def test_language_switcher_for_visitors_and_users(cast: Cast) -> None:
    visitor = Client()
    response = visitor.post(reverse("set_language"), {"language": "it", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert visitor.get(reverse("login")).headers["Content-Language"] == "it"

    client = client_for(cast.rep)
    client.post(reverse("set_language"), {"language": "ru", "next": "https://evil.example/"})
    cast.rep.refresh_from_db()
    assert cast.rep.language == "ru"
    assert client.get(reverse("home")).headers["Content-Language"] == "ru"


def test_language_switcher_refuses_unknown_language_and_foreign_redirects(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("set_language"), {"language": "klingon", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    cast.rep.refresh_from_db()
    assert cast.rep.language == "en"


@pytest.mark.parametrize("model", [User, Territory, ProductLine, "team"])
def test_admin_lists_and_forms_open_for_admin_only(cast: Cast, model) -> None:
    TerritoryFactory(name="Stockholm")
    ProductLineFactory(name="Hardware")
    name = "accounts_team" if model == "team" else f"accounts_{model._meta.model_name}"
    changelist = reverse(f"admin:{name}_changelist")
    add = reverse(f"admin:{name}_add")
    admin_client = client_for(cast.admin)
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "a"}).status_code == 200
    assert admin_client.get(add).status_code == 200
    for role, user in cast.roles().items():
        if role != "admin":
            response = client_for(user).get(changelist)
            assert response.status_code == 302, role
            assert response["Location"].startswith(reverse("admin:login"))


def test_admin_refuses_a_rep_as_team_manager(cast: Cast) -> None:
    response = client_for(cast.admin).post(
        reverse("admin:accounts_team_add"),
        {
            "name": "East",
            "managers": [cast.rep.pk],
            "is_active": "on",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    # Only people with the manager role are offered, and a forged choice is refused.
    assert "Select a valid choice" in response.content.decode()
