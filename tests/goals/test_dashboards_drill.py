"""The drill-down lists behind dashboard numbers: scope, period, access, pagination."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from leads.models import DealStatus, Stage
from tests.conftest import Cast, client_for
from tests.goals.builders import deal, estimate, lead, local

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 16, 11, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def rows(cast: Cast) -> Cast:
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 2), amount="1111")
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), status=DealStatus.LOST, amount="2222")
    deal(owner=cast.teammate, close_date=dt.date(2026, 3, 4), amount="3333")
    deal(owner=cast.other_rep, close_date=dt.date(2026, 3, 5), amount="4444")
    deal(owner=cast.rep, close_date=dt.date(2026, 2, 5), amount="5555")  # last month
    lead(owner=cast.rep, created=local(2026, 3, 2), stage=Stage.SUSPECT)
    lead(owner=cast.rep, created=local(2026, 3, 2), stage=Stage.LOST, decided=local(2026, 3, 9))
    lead(owner=cast.other_rep, created=local(2026, 3, 2))
    estimate(owner=cast.rep, issued_on=dt.date(2026, 3, 6), amount="6666")
    estimate(owner=cast.other_rep, issued_on=dt.date(2026, 3, 6), amount="7777")
    return cast


def drill(user, kind: str, **params: str):
    return client_for(user).get(reverse("goals:drilldown", args=[kind]), params)


def amounts(response) -> list[str]:
    html = response.content.decode()
    return [a for a in ("1,111", "2,222", "3,333", "4,444", "5,555", "6,666", "7,777") if a in html]


def test_rep_sees_only_own_rows_whatever_the_scope_asked(rows: Cast) -> None:
    assert amounts(drill(rows.rep, "deals-won")) == ["1,111"]
    assert drill(rows.rep, "deals-won", scope=f"rep:{rows.teammate.pk}").status_code == 404
    assert drill(rows.rep, "deals-won", scope=f"team:{rows.team.pk}").status_code == 403
    assert drill(rows.rep, "deals-won", scope="company").status_code == 403


def test_manager_team_scope_and_other_teams(rows: Cast) -> None:
    response = drill(rows.manager, "deals-won", scope=f"team:{rows.team.pk}")
    assert amounts(response) == ["1,111", "3,333"]
    assert drill(rows.manager, "deals-won", scope=f"team:{rows.other_team.pk}").status_code == 404
    assert drill(rows.manager, "deals-won", scope=f"rep:{rows.other_rep.pk}").status_code == 404
    assert amounts(drill(rows.manager, "deals-lost", scope=f"rep:{rows.rep.pk}")) == ["2,222"]


def test_admin_company_and_period(rows: Cast) -> None:
    assert amounts(drill(rows.admin, "deals-won", scope="company")) == [
        "1,111",
        "3,333",
        "4,444",
    ]
    last_month = drill(rows.admin, "deals-won", scope="company", period="last_month")
    assert amounts(last_month) == ["5,555"]
    assert amounts(drill(rows.admin, "estimates-issued", scope="company")) == ["6,666", "7,777"]


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 200), ("marketing", 403), ("admin", 200)],
)
def test_drilldown_per_role(rows: Cast, role: str, status: int) -> None:
    assert drill(rows.roles()[role], "leads-created").status_code == status


def test_leads_created_and_decided(rows: Cast) -> None:
    created = drill(rows.rep, "leads-created", scope=f"rep:{rows.rep.pk}")
    assert created.context["page_obj"].paginator.count == 2
    decided = drill(rows.rep, "leads-decided")
    assert decided.context["page_obj"].paginator.count == 1


def test_unknown_kind_is_404_and_bad_period_is_a_message(rows: Cast) -> None:
    assert drill(rows.admin, "everything").status_code == 404
    response = drill(rows.admin, "deals-won", period="custom", start="2026-03-09")
    assert response.status_code == 200
    assert "give both its first and last day" in response.content.decode()


def test_pages_of_fifty(cast: Cast) -> None:
    for n in range(51):
        deal(owner=cast.rep, close_date=dt.date(2026, 3, 1 + n % 14), amount=100 + n)
    first = drill(cast.rep, "deals-won")
    assert first.content.decode().count('data-testid="row"') == 50
    second = drill(cast.rep, "deals-won", page="2")
    assert second.content.decode().count('data-testid="row"') == 1


def test_leads_created_on_the_daylight_saving_day(cast: Cast, time_machine) -> None:
    """29 March 2026 has 23 hours in Stockholm: a lead at 23:30 that evening is the 29th's."""
    time_machine.move_to(dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    lead(owner=cast.rep, created=local(2026, 3, 29, 23, 30))
    lead(owner=cast.rep, created=local(2026, 3, 30, 0, 15))
    lead(owner=cast.rep, created=local(2026, 3, 29, 0, 30))
    lead(owner=cast.rep, created=local(2026, 3, 28, 23, 59))
    params = {"period": "custom", "start": "2026-03-29", "end": "2026-03-29"}
    response = drill(cast.rep, "leads-created", **params)
    assert response.context["page_obj"].paginator.count == 2
