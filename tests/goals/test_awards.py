"""Awards: who may give them to whom, what is checked, the pages, and the candidates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import User
from goals.models import (
    Award,
    AwardKind,
    DailyRepFact,
    Goal,
    GoalRevision,
    Metric,
    OwnerKind,
    PeriodKind,
    RevisionReason,
)
from goals.recognition import award_candidates, award_create
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, UserFactory

pytestmark = pytest.mark.django_db

MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


@pytest.fixture(autouse=True)
def _company_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def give(actor: User, rep: User, **fields) -> Award:
    values = {
        "title": "Top seller of March",
        "kind": AwardKind.BONUS,
        "value": Decimal("500.00"),
        "period_start": MARCH[0],
        "period_end": MARCH[1],
        "reason": "Best month of the year",
    }
    values.update(fields)
    return award_create(actor=actor, rep=rep, **values)


# --- The service ---------------------------------------------------------------------------


def test_manager_gives_an_award_to_a_rep_of_their_team(cast: Cast) -> None:
    award = give(cast.manager, cast.rep, title="  Top seller  ")
    assert (award.rep, award.title, award.awarded_by, award.value) == (
        cast.rep,
        "Top seller",
        cast.manager,
        Decimal("500.00"),
    )


def test_admin_gives_to_anyone_in_sales(cast: Cast) -> None:
    give(cast.admin, cast.other_rep)
    give(cast.admin, cast.manager, value=None, kind=AwardKind.TRIP)
    assert Award.objects.count() == 2


@pytest.mark.parametrize("whom", ["other_rep", "manager", "marketing"])
def test_manager_cannot_give_outside_their_teams(cast: Cast, whom: str) -> None:
    with pytest.raises(ValidationError) as refused:
        give(cast.manager, getattr(cast, whom))
    assert refused.value.message_dict == {
        "rep": ["You can give awards only to active members of your teams."]
    }
    assert not Award.objects.exists()


def test_inactive_rep_gets_no_award(cast: Cast) -> None:
    cast.teammate.is_active = False
    cast.teammate.save(update_fields=["is_active"])
    with pytest.raises(ValidationError):
        give(cast.manager, cast.teammate)


@pytest.mark.parametrize("who", ["rep", "marketing"])
def test_reps_and_marketing_give_no_awards(cast: Cast, who: str) -> None:
    with pytest.raises(ValidationError) as refused:
        give(getattr(cast, who), cast.rep)
    assert refused.value.messages == ["Only managers and administrators give awards."]


def test_every_problem_is_reported_at_once(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        give(
            cast.manager,
            cast.rep,
            title=" ",
            kind="car",
            value=Decimal("-1"),
            period_start=MARCH[1],
            period_end=MARCH[0],
            reason="",
        )
    assert refused.value.message_dict == {
        "title": ["Give the award a title."],
        "kind": ["Choose the kind of award."],
        "value": ["The value cannot be negative."],
        "period_end": ["The period ends before it starts."],
        "reason": ["Say why the award is given."],
    }
    assert not Award.objects.exists()


def test_value_zero_and_a_one_day_period_are_fine(cast: Cast) -> None:
    award = give(cast.manager, cast.rep, value=Decimal(0), period_end=MARCH[0])
    assert award.value == 0


# --- Pages ---------------------------------------------------------------------------------


@pytest.fixture
def awards(cast: Cast) -> Cast:
    give(cast.manager, cast.rep, title="Alice's bonus")
    give(cast.manager, cast.teammate, title="Bob's trip", kind=AwardKind.TRIP)
    give(cast.other_manager, cast.other_rep, title="Charlie's day off", kind=AwardKind.TIME_OFF)
    return cast


LIST_SEES = {
    "owner_rep": {"Alice&#x27;s bonus"},
    "manager": {"Alice&#x27;s bonus", "Bob&#x27;s trip"},
    "other_rep": {"Charlie&#x27;s day off"},
    "admin": {"Alice&#x27;s bonus", "Bob&#x27;s trip", "Charlie&#x27;s day off"},
}
ALL_TITLES = LIST_SEES["admin"]


@pytest.mark.parametrize("role", ["owner_rep", "manager", "other_rep", "marketing", "admin"])
def test_award_list_per_role(awards: Cast, role: str) -> None:
    response = client_for(awards.roles()[role]).get(reverse("goals:award_list"))
    if role == "marketing":
        assert response.status_code == 403
        return
    body = response.content.decode()
    assert {title for title in ALL_TITLES if title in body} == LIST_SEES[role]
    assert ("Give an award" in body) == (role in ("manager", "admin"))
    assert ('data-testid="candidates"' in body) == (role in ("manager", "admin"))


def test_award_list_filters(awards: Cast) -> None:
    client = client_for(awards.admin)
    body = client.get(reverse("goals:award_list"), {"kind": "trip"}).content.decode()
    assert "Bob&#x27;s trip" in body and "Alice&#x27;s bonus" not in body
    body = client.get(reverse("goals:award_list"), {"start": "2026-04-01"}).content.decode()
    assert 'data-testid="no-awards"' in body


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 200), ("manager", 200), ("other_rep", 404), ("marketing", 403), ("admin", 200)],
)
def test_award_history_per_role(awards: Cast, role: str, status: int) -> None:
    url = reverse("goals:award_history", args=[awards.rep.pk])
    response = client_for(awards.roles()[role]).get(url)
    assert response.status_code == status
    if status == 200:
        body = response.content.decode()
        assert "Alice&#x27;s bonus" in body and "Bob&#x27;s trip" not in body
        assert "1 award" in body


def test_award_history_of_nobody_is_404(awards: Cast) -> None:
    url = reverse("goals:award_history", args=[999999])
    assert client_for(awards.admin).get(url).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 403), ("manager", 200), ("other_rep", 403), ("marketing", 403), ("admin", 200)],
)
def test_award_form_per_role(cast: Cast, role: str, status: int) -> None:
    response = client_for(cast.roles()[role]).get(reverse("goals:award_create"))
    assert response.status_code == status


def test_award_form_is_prefilled_from_a_candidate(cast: Cast) -> None:
    url = reverse("goals:award_create") + f"?rep={cast.rep.pk}&start=2026-03-01&end=2026-03-31"
    form = client_for(cast.manager).get(url).context["form"]
    assert form["rep"].value() == str(cast.rep.pk)
    assert form["period_start"].value() == "2026-03-01"
    # Only the manager's team in the choices.
    assert set(form.fields["rep"].queryset) == {cast.rep, cast.teammate}


def test_posting_the_form_gives_the_award(cast: Cast) -> None:
    response = client_for(cast.manager).post(
        reverse("goals:award_create"),
        {
            "rep": cast.rep.pk,
            "title": "Top seller",
            "kind": "bonus",
            "value": "250",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
            "reason": "Most revenue, happiest customers",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("goals:award_history", args=[cast.rep.pk])
    assert "Award “Top seller” given to Alice Rep." in response.content.decode()
    assert Award.objects.get().value == Decimal("250.00")


def test_a_bad_form_keeps_what_was_typed(cast: Cast) -> None:
    response = client_for(cast.manager).post(
        reverse("goals:award_create"),
        {
            "rep": cast.rep.pk,
            "title": "Top seller",
            "kind": "bonus",
            "period_start": "2026-03-31",
            "period_end": "2026-03-01",
            "reason": "",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "The period ends before it starts." in body
    assert "Say why the award is given." in body
    assert 'value="Top seller"' in body
    assert not Award.objects.exists()


def test_a_manager_cannot_post_for_another_team(cast: Cast) -> None:
    response = client_for(cast.manager).post(
        reverse("goals:award_create"),
        {
            "rep": cast.other_rep.pk,
            "title": "x",
            "kind": "bonus",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
            "reason": "y",
        },
    )
    assert response.status_code == 200
    assert not Award.objects.exists()


def test_award_list_queries_do_not_grow(
    cast: Cast, django_assert_num_queries, time_machine
) -> None:
    time_machine.move_to(dt.datetime(2026, 4, 15, 10, tzinfo=dt.UTC))  # candidates: March
    client = client_for(cast.manager)
    url = reverse("goals:award_list")
    give(cast.manager, cast.rep)
    revenue_goal(cast.rep, "100")
    facts(cast.rep, revenue="100", answered=1, satisfied=1)
    # 1 session, 2 user, 3 the manager's team and member ids (scope), 4 count of
    # the awards, 5 the first team, 6 its members, 7 their revenue goals, 8 the goals'
    # revisions, 9 the facts grouped by rep, 10-11 the team picker's choices,
    # 12 the rep filter's choices, 13 the page of awards (with rep and giver).
    with django_assert_num_queries(13):
        client.get(url)
    extra = UserFactory(team=cast.team)
    give(User.objects.get(pk=cast.manager.pk), extra)  # fresh: the team ids are cached
    revenue_goal(extra, "100")
    facts(extra, revenue="100", answered=1, satisfied=1)
    with django_assert_num_queries(13):
        client.get(url)


# --- Candidates ----------------------------------------------------------------------------


def revenue_goal(rep: User, target: str, **fields) -> Goal:
    fields.setdefault("start", MARCH[0])
    fields.setdefault("end", MARCH[1])
    return Goal.objects.create(
        owner_kind=OwnerKind.REP,
        rep=rep,
        period_kind=PeriodKind.MONTH,
        metric=Metric.REVENUE_WON,
        target=Decimal(target),
        **fields,
    )


def facts(rep: User, *, revenue: str = "0", answered: int = 0, satisfied: int = 0, **extra):
    DailyRepFact.objects.create(
        rep=rep,
        day=extra.pop("day", dt.date(2026, 3, 10)),
        revenue_won=Decimal(revenue),
        csat_answered=answered,
        csat_satisfied=satisfied,
        **extra,
    )


@pytest.fixture
def contest(cast: Cast) -> Cast:
    """Team North in March (team CSAT: 12 satisfied of 13 answers, 92.3):

    - Alice: 90 % of her goal, CSAT 100 (5 of 5) → a candidate;
    - Bob: 120 %, CSAT 75 (3 of 4), below the team → not;
    - Carol: 120 % (two goals), CSAT 100 (2 of 2) → a candidate, first;
    - Dave: 200 %, no survey answer → not;
    - Erin: CSAT 100 (2 of 2) but no revenue goal → not.
    """
    carol = UserFactory(display_name="Carol Rep", team=cast.team)
    dave = UserFactory(display_name="Dave Rep", team=cast.team)
    erin = UserFactory(display_name="Erin Rep", team=cast.team)
    revenue_goal(cast.rep, "1000")
    facts(cast.rep, revenue="900", answered=5, satisfied=5)
    revenue_goal(cast.teammate, "1000")
    facts(cast.teammate, revenue="1200", answered=4, satisfied=3)
    revenue_goal(carol, "300", end=dt.date(2026, 3, 15))
    revenue_goal(carol, "200", start=dt.date(2026, 3, 16))
    facts(carol, revenue="400", answered=2, satisfied=2)
    facts(carol, revenue="200", day=dt.date(2026, 3, 20))
    revenue_goal(dave, "100")
    facts(dave, revenue="200")
    facts(erin, revenue="5000", answered=1, satisfied=1)
    facts(erin, answered=1, satisfied=1, day=dt.date(2026, 3, 11))
    # Not counted: another team, another month, a deals-won goal.
    facts(cast.other_rep, answered=10, satisfied=0)
    facts(cast.rep, revenue="5000", day=dt.date(2026, 4, 1))
    Goal.objects.create(
        owner_kind=OwnerKind.REP,
        rep=erin,
        period_kind=PeriodKind.MONTH,
        metric=Metric.DEALS_WON,
        start=MARCH[0],
        end=MARCH[1],
        target=Decimal(1),
    )
    return cast


def test_candidates_order_and_the_csat_rule(contest: Cast) -> None:
    found = award_candidates(team=contest.team, start=MARCH[0], end=MARCH[1])
    assert found.team_csat == Decimal(100) * 12 / 13
    assert [(c.rep.display_name, c.attainment, c.csat) for c in found.rows] == [
        ("Carol Rep", Decimal("1.2"), Decimal(100)),
        ("Alice Rep", Decimal("0.9"), Decimal(100)),
    ]
    carol = found.rows[0]
    assert (carol.revenue, carol.target, carol.csat_answered) == (
        Decimal("600.00"),
        Decimal("500.00"),
        2,
    )


def test_a_goal_narrowed_to_a_product_line_counts_that_line_only(contest: Cast) -> None:
    line = ProductLineFactory()
    Goal.objects.filter(rep=contest.rep).update(product_line=line)
    facts(contest.rep, revenue="250", day=dt.date(2026, 3, 12), product_line=line)
    found = award_candidates(team=contest.team, start=MARCH[0], end=MARCH[1])
    alice = next(c for c in found.rows if c.rep == contest.rep)
    assert alice.attainment == Decimal("0.25")
    assert found.rows[-1] == alice


def test_attainment_uses_the_target_in_force_at_the_goal_end(contest: Cast) -> None:
    goal = Goal.objects.get(rep=contest.rep)
    goal.target = Decimal(600)
    goal.save(update_fields=["target"])
    GoalRevision.objects.create(
        goal=goal,
        old_target=Decimal(1000),
        new_target=Decimal(600),
        reason=RevisionReason.ECONOMY,
        effective_from=dt.date(2026, 3, 15),
    )
    found = award_candidates(team=contest.team, start=MARCH[0], end=MARCH[1])
    assert found.rows[0].rep == contest.rep
    assert found.rows[0].attainment == Decimal("1.5")


def test_goals_outside_the_period_do_not_count(contest: Cast) -> None:
    found = award_candidates(team=contest.team, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28))
    assert found.rows == [] and found.team_csat is None


def test_candidates_on_the_page_with_a_recognise_link(contest: Cast, time_machine) -> None:
    time_machine.move_to(dt.datetime(2026, 4, 15, 10, tzinfo=dt.UTC))
    body = client_for(contest.manager).get(reverse("goals:award_list")).content.decode()
    assert body.count('data-testid="candidate"') == 2
    assert body.index("Carol Rep") < body.index("Alice Rep")
    assert f"?rep={contest.rep.pk}&amp;start=2026-03-01&amp;end=2026-03-31" in body
    assert "Recognise" in body
    this_month = client_for(contest.manager).get(
        reverse("goals:award_list"), {"period": "this_month"}
    )
    assert 'data-testid="no-candidates"' in this_month.content.decode()
