"""The balanced scorecard: parts, scores against the team, weights, and the page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from goals.models import DailyRepFact
from goals.recognition import part_score, scorecard_for_team, weighted_total
from leads.models import Stage
from tests.conftest import Cast, client_for
from tests.factories import UserFactory
from tests.factories_leads import CustomerFactory
from tests.goals.builders import deal, lead, local

pytestmark = pytest.mark.django_db

START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
WEIGHTS = {
    "volume": Decimal("0.25"),
    "conversion": Decimal("0.20"),
    "average_ticket": Decimal("0.10"),
    "cycle_time": Decimal("0.10"),
    "repeat_business": Decimal("0.15"),
    "satisfaction": Decimal("0.20"),
}


@pytest.fixture(autouse=True)
def _settings(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    settings.SCORECARD_WEIGHTS = WEIGHTS


# --- The arithmetic -----------------------------------------------------------------------


def test_weights_are_renormalised_over_the_parts_present() -> None:
    scores = {"volume": Decimal(100), "conversion": Decimal(50), "satisfaction": None}
    assert weighted_total(scores, WEIGHTS) == (
        Decimal("0.25") * 100 + Decimal("0.20") * 50
    ) / Decimal("0.45")
    assert weighted_total({"volume": None}, WEIGHTS) is None


def test_weights_need_not_add_up_to_one() -> None:
    doubled = {part: weight * 2 for part, weight in WEIGHTS.items()}
    scores = {part: Decimal(60) for part in WEIGHTS}
    assert weighted_total(scores, doubled) == Decimal(60)


def test_part_score_against_the_best() -> None:
    assert part_score(Decimal(50), Decimal(200), lower_is_better=False) == Decimal(25)
    assert part_score(None, Decimal(200), lower_is_better=False) is None
    assert part_score(Decimal(0), Decimal(0), lower_is_better=False) is None  # nobody has any


def test_cycle_time_is_inverted_and_a_same_day_deal_counts_as_one_day() -> None:
    assert part_score(Decimal(20), Decimal(10), lower_is_better=True) == Decimal(50)
    assert part_score(Decimal(10), Decimal(10), lower_is_better=True) == Decimal(100)
    assert part_score(Decimal(4), Decimal(0), lower_is_better=True) == Decimal(25)


# --- A team in March -------------------------------------------------------------------------


def facts(rep: User, **columns) -> None:
    columns.setdefault("day", dt.date(2026, 3, 10))
    DailyRepFact.objects.create(rep=rep, **columns)


def won_with_lead(rep: User, *, days: int, customer=None, amount: str = "1000.00") -> None:
    """A won deal on 20 March whose lead was created ``days`` days before."""
    created = dt.date(2026, 3, 20) - dt.timedelta(days=days)
    source = lead(
        owner=rep,
        created=local(created.year, created.month, created.day),
        stage=Stage.WON,
        decided=local(2026, 3, 20),
    )
    deal(owner=rep, close_date=dt.date(2026, 3, 20), amount=amount, customer=customer, lead=source)


@pytest.fixture
def team_march(cast: Cast) -> Cast:
    """Alice: 2000 won in 2 deals, 2 lost, CSAT 4 of 4, cycles 10 and 20 days, one customer
    back from February. Bob: 1000 in 1 deal, none lost, no survey, a 5-day cycle, a new
    customer. Dan: nothing yet."""
    UserFactory(display_name="Dan New", team=cast.team)
    facts(cast.rep, revenue_won=Decimal(2000), deals_won=2, deals_lost=2)
    facts(cast.rep, csat_answered=4, csat_satisfied=4, product_line=None, day=dt.date(2026, 3, 11))
    returning = CustomerFactory(owner=cast.rep)
    deal(owner=cast.rep, close_date=dt.date(2026, 2, 10), customer=returning)
    won_with_lead(cast.rep, days=10, customer=returning)
    won_with_lead(cast.rep, days=20)
    facts(cast.teammate, revenue_won=Decimal(1000), deals_won=1)
    won_with_lead(cast.teammate, days=5)
    # Another team's star does not set North's best.
    facts(cast.other_rep, revenue_won=Decimal(99000), deals_won=1)
    return cast


def test_scorecard_parts_scores_and_totals(team_march: Cast) -> None:
    card = scorecard_for_team(team=team_march.team, start=START, end=END)
    rows = {row.rep.display_name: row for row in card.rows}
    assert list(rows) == ["Alice Rep", "Bob Rep", "Dan New"]
    alice, bob, dan = rows["Alice Rep"], rows["Bob Rep"], rows["Dan New"]

    def values(row):
        return {part: (p.value, p.score) for part, p in row.parts.items()}

    assert values(alice) == {
        "volume": (Decimal(2000), Decimal(100)),
        "conversion": (Decimal("0.5"), Decimal(50)),
        "average_ticket": (Decimal(1000), Decimal(100)),
        "cycle_time": (Decimal(15), Decimal(100) * 5 / 15),
        "repeat_business": (Decimal("0.5"), Decimal(100)),
        "satisfaction": (Decimal(100), Decimal(100)),
    }
    assert values(bob) == {
        "volume": (Decimal(1000), Decimal(50)),
        "conversion": (Decimal(1), Decimal(100)),
        "average_ticket": (Decimal(1000), Decimal(100)),
        "cycle_time": (Decimal(5), Decimal(100)),
        "repeat_business": (Decimal(0), Decimal(0)),
        "satisfaction": (None, None),
    }
    assert alice.total == (
        Decimal("0.25") * 100
        + Decimal("0.20") * 50
        + Decimal("0.10") * 100
        + Decimal("0.10") * (Decimal(100) * 5 / 15)
        + Decimal("0.15") * 100
        + Decimal("0.20") * 100
    )
    # Bob has no satisfaction part: the other weights (0.80) carry his total.
    assert bob.total == (Decimal("12.5") + 20 + 10 + 10 + 0) / Decimal("0.80")
    assert all(part.score is None for part in dan.parts.values()) and dan.total is None
    assert card.average.parts["volume"].score == Decimal(75)
    assert card.average.total == (alice.total + bob.total) / 2


def test_weights_come_from_the_settings(team_march: Cast, settings) -> None:
    settings.SCORECARD_WEIGHTS = {"volume": 1}
    card = scorecard_for_team(team=team_march.team, start=START, end=END)
    assert [row.total for row in card.rows] == [Decimal(100), Decimal(50), None]


def test_scorecard_queries_do_not_grow(cast: Cast, django_assert_num_queries) -> None:
    def count_for_team() -> None:
        # 1 members, 2 facts grouped by rep, 3 the raw won deals grouped by rep.
        with django_assert_num_queries(3):
            scorecard_for_team(team=cast.team, start=START, end=END)

    won_with_lead(cast.rep, days=3)
    count_for_team()
    extra = UserFactory(team=cast.team)
    facts(extra, revenue_won=Decimal(10), deals_won=1)
    won_with_lead(extra, days=4)
    count_for_team()


# --- The page ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 200), ("marketing", 403), ("admin", 200)],
)
def test_page_per_role(team_march: Cast, time_machine, role: str, status: int) -> None:
    time_machine.move_to(dt.datetime(2026, 3, 25, 10, tzinfo=dt.UTC))
    response = client_for(team_march.roles()[role]).get(reverse("goals:scorecard"))
    assert response.status_code == status
    if status != 200:
        return
    body = response.content.decode()
    if role == "owner_rep":
        assert "Alice Rep" in body and "Bob Rep" not in body
        assert 'data-testid="average"' in body
    elif role in ("manager", "admin"):
        assert body.count('data-testid="rep"') == 3
    else:
        assert "Charlie Rep" in body and "Alice Rep" not in body


def test_rep_cannot_open_another_team(team_march: Cast) -> None:
    url = reverse("goals:scorecard") + f"?team={team_march.other_team.pk}"
    assert client_for(team_march.rep).get(url).status_code == 404
    assert client_for(team_march.manager).get(url).status_code == 404
    assert client_for(team_march.admin).get(url).status_code == 200


def test_period_picker(team_march: Cast, time_machine) -> None:
    time_machine.move_to(dt.datetime(2026, 4, 2, 10, tzinfo=dt.UTC))
    client = client_for(team_march.manager)
    april = client.get(reverse("goals:scorecard")).content.decode()
    assert "2,000" not in april and "2000" not in april
    quarter = client.get(reverse("goals:scorecard"), {"period": "this_quarter"})
    year = client.get(reverse("goals:scorecard"), {"period": "this_year"})
    assert quarter.context["start"] == dt.date(2026, 4, 1)
    assert year.context["start"] == dt.date(2026, 1, 1)
    assert year.context["card"].rows[0].parts["volume"].value == Decimal(2000)


def test_without_a_team_an_empty_state(cast: Cast) -> None:
    lonely = UserFactory(display_name="Lonely")
    response = client_for(lonely).get(reverse("goals:scorecard"))
    assert "No team to show yet." in response.content.decode()


def test_page_queries_do_not_grow(
    team_march: Cast, django_assert_num_queries, time_machine
) -> None:
    time_machine.move_to(dt.datetime(2026, 4, 2, 10, tzinfo=dt.UTC))
    client = client_for(team_march.manager)
    url = reverse("goals:scorecard")
    # 1 session, 2 user, 3 the first team, 4 members, 5 facts by rep, 6 raw deals by
    # rep, 7-8 the team picker's choices.
    with django_assert_num_queries(8):
        client.get(url, {"period": "this_year"})
    extra = UserFactory(team=team_march.team)
    facts(extra, revenue_won=Decimal(10), deals_won=1)
    with django_assert_num_queries(8):
        client.get(url, {"period": "this_year"})
