"""Team, company and rep dashboards: access, KPI cards, change, goals, coverage, funnel."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import User
from goals import dashboards as dash
from goals.kpis import compute_facts_range
from goals.models import Goal, Metric, OwnerKind, PeriodKind
from leads.models import DealStatus, Stage
from tests.conftest import Cast, client_for
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory
from tests.goals.builders import activity, deal, estimate, lead, local
from tests.reminders.helpers import reminder_for

pytestmark = pytest.mark.django_db

# Monday 16 March 2026, noon in Stockholm: facts run up to Sunday 15 March.
NOW = dt.datetime(2026, 3, 16, 11, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 16)


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"
    settings.COMPANY_HOLIDAYS = []
    time_machine.move_to(NOW, tick=False)


def make_goal(rep: User, target: str, *, metric: str = Metric.REVENUE_WON, line=None, **kw) -> Goal:
    start, end = kw.pop("start", dt.date(2026, 3, 1)), kw.pop("end", dt.date(2026, 3, 31))
    return Goal.objects.create(
        owner_kind=OwnerKind.REP,
        rep=rep,
        period_kind=PeriodKind.MONTH,
        start=start,
        end=end,
        metric=metric,
        target=Decimal(target),
        product_line=line,
    )


@pytest.fixture
def sales(cast: Cast) -> Cast:
    """March: rep won 1000 + 2000 and lost one; teammate won 4000; other team 9000.
    February (the previous 15 days, 14-28 Feb): rep won 1500."""
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 2), amount="1000")
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 10), amount="2000")
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 11), status=DealStatus.LOST)
    deal(owner=cast.teammate, close_date=dt.date(2026, 3, 12), amount="4000")
    deal(owner=cast.other_rep, close_date=dt.date(2026, 3, 5), amount="9000")
    deal(owner=cast.rep, close_date=dt.date(2026, 2, 20), amount="1500")
    # Today's deal is not in the facts yet (the nightly job adds it tonight).
    deal(owner=cast.rep, close_date=TODAY, amount="500")
    compute_facts_range(dt.date(2026, 2, 1), TODAY)
    return cast


def kpi_value(html: str, name: str) -> str:
    block = html.split(f'data-testid="kpi-{name}"', 1)[1]
    value = block.split('data-testid="value">', 1)[1].split("</div>", 1)[0].split("</td>", 1)[0]
    text = re.sub(r"<[^>]+>", " ", unescape(value)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text).strip()


# --- Access -----------------------------------------------------------------------------

ENTRY = {
    "owner_rep": (302, "rep"),
    "manager": (302, "team"),
    "other_rep": (302, "rep"),
    "marketing": (403, None),
    "admin": (302, "company"),
}


@pytest.mark.parametrize("role", list(ENTRY))
def test_dashboard_entry_sends_each_role_to_their_view(cast: Cast, role: str) -> None:
    user = cast.roles()[role]
    response = client_for(user).get(reverse("goals:dashboard"), {"period": "last_month"})
    status, where = ENTRY[role]
    assert response.status_code == status
    if where == "rep":
        assert response.url == reverse("goals:rep_dashboard", args=[user.pk]) + "?period=last_month"
    elif where == "team":
        assert response.url.startswith(reverse("goals:team_dashboard", args=[cast.team.pk]))
    elif where == "company":
        assert response.url.startswith(reverse("goals:company_dashboard"))


TEAM_PAGE = {"owner_rep": 403, "manager": 200, "other_rep": 403, "marketing": 403, "admin": 200}
COMPANY_PAGE = {"owner_rep": 403, "manager": 403, "other_rep": 403, "marketing": 403, "admin": 200}
REP_PAGE = {"owner_rep": 200, "manager": 200, "other_rep": 404, "marketing": 403, "admin": 200}


@pytest.mark.parametrize("role", list(TEAM_PAGE))
def test_team_dashboard_per_role(cast: Cast, role: str) -> None:
    url = reverse("goals:team_dashboard", args=[cast.team.pk])
    assert client_for(cast.roles()[role]).get(url).status_code == TEAM_PAGE[role]


def test_another_managers_team_is_404(cast: Cast) -> None:
    url = reverse("goals:team_dashboard", args=[cast.other_team.pk])
    assert client_for(cast.manager).get(url).status_code == 404
    assert (
        client_for(cast.manager).get(reverse("goals:dashboard"), {"team": 999999}).status_code
        == 404
    )


@pytest.mark.parametrize("role", list(COMPANY_PAGE))
def test_company_dashboard_per_role(cast: Cast, role: str) -> None:
    url = reverse("goals:company_dashboard")
    assert client_for(cast.roles()[role]).get(url).status_code == COMPANY_PAGE[role]


@pytest.mark.parametrize("role", list(REP_PAGE))
def test_rep_dashboard_per_role(cast: Cast, role: str) -> None:
    url = reverse("goals:rep_dashboard", args=[cast.rep.pk])
    assert client_for(cast.roles()[role]).get(url).status_code == REP_PAGE[role]


def test_manager_without_a_team_gets_an_empty_state(cast: Cast) -> None:
    lonely = UserFactory(role="manager")
    response = client_for(lonely).get(reverse("goals:dashboard"))
    assert response.status_code == 200
    assert "You do not manage a team yet" in response.content.decode()


# --- KPI cards and the change against the previous period ------------------------------


def test_team_cards_sum_the_team_and_compare_with_the_days_before(sales: Cast) -> None:
    response = client_for(sales.manager).get(reverse("goals:team_dashboard", args=[sales.team.pk]))
    html = response.content.decode()
    assert kpi_value(html, "sales_volume").startswith("7,000")  # 1000 + 2000 + 4000, not today's
    assert kpi_value(html, "deals_won") == "3"
    assert kpi_value(html, "win_rate") == "75.0 %"
    cards = {card.name: card for card in response.context["cards"]}
    assert cards["sales_volume"].change == dash.Change("up", Decimal("367"))  # from 1500
    assert cards["sales_volume"].good is True
    assert response.context["previous_range"] == (dt.date(2026, 2, 14), dt.date(2026, 2, 28))
    assert "9,000" not in html  # the other team's deal
    assert "up to yesterday" in html


def test_company_dashboard_counts_every_team_and_lists_teams(sales: Cast) -> None:
    response = client_for(sales.admin).get(reverse("goals:company_dashboard"))
    assert kpi_value(response.content.decode(), "sales_volume").startswith("16,000")
    rows = {row.label: row for row in response.context["rows"]}
    assert (rows["North"].revenue, rows["South"].revenue) == (Decimal(7000), Decimal(9000))
    assert rows["North"].win_rate == Decimal("0.75")


def test_charts_get_weekly_and_monthly_figures(sales: Cast) -> None:
    response = client_for(sales.manager).get(
        reverse("goals:team_dashboard", args=[sales.team.pk]), {"period": "this_quarter"}
    )
    weekly = {row["week"]: row for row in response.context["chart_data"]["weekly"]}
    # Week of Monday 9 March: rep won 2000 and lost one, teammate won 4000.
    assert weekly["2026-03-09"] == {"week": "2026-03-09", "revenue": "6000.00", "win_rate": 66.7}
    assert weekly["2026-02-16"]["revenue"] == "1500.00"
    assert [row["month"] for row in response.context["chart_data"]["monthly"]] == [
        "2026-02",
        "2026-03",
    ]
    assert 'id="dashboard-data"' in response.content.decode()


def test_change_handles_zero_and_empty() -> None:
    assert dash.change(Decimal(5), Decimal(0)) == dash.Change("up", None)
    assert dash.change(0, 0) == dash.Change("flat", Decimal(0))
    assert dash.change(None, 3) == dash.Change("", None)
    assert dash.change(Decimal(50), Decimal(100)) == dash.Change("down", Decimal(-50))
    assert dash.change(Decimal(50), Decimal(100)).label == "▼ 50\u00a0%"
    assert dash.change(Decimal(5), Decimal(0)).label == "▲ new"


def test_empty_team_shows_zeros_and_no_comparison(cast: Cast) -> None:
    response = client_for(cast.manager).get(reverse("goals:team_dashboard", args=[cast.team.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert kpi_value(html, "average_ticket") == "—"
    assert "no comparison" in html
    assert "No revenue won yet in this period." in html


# --- Goals: pace colours and what is needed per working day -----------------------------


@pytest.mark.parametrize(
    ("won", "status", "colour"),
    [("1500", "on_track", "success"), ("1300", "behind", "warning"), ("500", "at_risk", "danger")],
)
def test_pace_status_colours(cast: Cast, won: str, status: str, colour: str) -> None:
    # 15 of 31 days elapsed: 3100 * 15/31 = 1500 expected by now.
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), amount=won)
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    make_goal(cast.rep, "3100")
    response = client_for(cast.manager).get(reverse("goals:team_dashboard", args=[cast.team.pk]))
    [row] = [row for row in response.context["rows"] if row.rep == cast.rep]
    [progress] = row.goals
    assert (progress.status, progress.colour) == (status, colour)
    assert f'data-status="{status}"' in response.content.decode()


def test_needed_per_remaining_working_day(cast: Cast, settings) -> None:
    settings.COMPANY_HOLIDAYS = ["2026-03-20"]
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), amount="1000")
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    make_goal(cast.rep, "5400")
    response = client_for(cast.rep).get(reverse("goals:rep_dashboard", args=[cast.rep.pk]))
    [progress] = response.context["goals"]
    # 16-31 March: 12 working days, minus the holiday = 11; (5400 - 1000) / 11 = 400.
    assert progress.remaining_days == 11
    assert progress.needed_per_day == Decimal("400.00")
    assert "needed: 400.00 per working day (11 left)" in response.content.decode()


def test_working_days_count_weeks_weekends_and_holidays(settings) -> None:
    from feedback.services import is_working_day

    settings.COMPANY_HOLIDAYS = ["2026-03-20", "2026-03-21", dt.date(2026, 4, 6)]  # a Saturday
    first = dt.date(2026, 3, 1)
    for start in (first + dt.timedelta(days=n) for n in range(9)):
        for length in range(-1, 45):
            end = start + dt.timedelta(days=length)
            expected = sum(
                is_working_day(start + dt.timedelta(days=n)) for n in range(max(0, length + 1))
            )
            assert dash.working_days(start, end) == expected, (start, end)


def test_goal_met_needs_nothing_more(cast: Cast) -> None:
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 3), amount="6000")
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    make_goal(cast.rep, "5000")
    response = client_for(cast.rep).get(reverse("goals:rep_dashboard", args=[cast.rep.pk]))
    [progress] = response.context["goals"]
    assert progress.needed_per_day == Decimal("0.00")
    assert progress.attainment == Decimal("1.2")


def test_overlapping_goals_each_count_their_own_days_lines_and_metrics(cast: Cast) -> None:
    """A quarter goal, a month goal inside it and a narrowed one: each sums its own days,
    line and metric (the days they share are read once, then added to each)."""
    line_a, line_b = ProductLineFactory(name="Alpha"), ProductLineFactory(name="Beta")
    north = TerritoryFactory(name="North")
    deal(owner=cast.rep, close_date=dt.date(2026, 1, 20), amount="700", line=line_a)
    deal(owner=cast.rep, close_date=dt.date(2026, 1, 21), amount="60", territory=north)
    deal(owner=cast.rep, close_date=dt.date(2026, 2, 27), amount="100", line=line_b)
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 2), amount="1000", line=line_a)
    deal(owner=cast.rep, close_date=dt.date(2026, 3, 10), amount="2000", line=line_b)
    deal(owner=cast.teammate, close_date=dt.date(2026, 3, 4), amount="4000", line=line_a)
    deal(owner=cast.rep, close_date=TODAY, amount="500", line=line_a)  # not in the facts yet
    compute_facts_range(dt.date(2026, 1, 1), TODAY)
    quarter = make_goal(cast.rep, "9000", start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31))
    month = make_goal(cast.rep, "5000")
    alpha = make_goal(cast.rep, "2000", line=line_a)
    deals = make_goal(cast.rep, "5", metric=Metric.DEALS_WON)
    late = make_goal(cast.rep, "10", start=dt.date(2026, 2, 15), end=dt.date(2026, 3, 20))
    teammate = make_goal(cast.teammate, "8000")
    in_north = make_goal(cast.rep, "100", start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    Goal.objects.filter(pk=in_north.pk).update(territory=north)
    in_north.refresh_from_db()
    january = make_goal(cast.rep, "900", start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    goals = [quarter, month, alpha, deals, late, teammate, in_north, january]
    totals = dash.goal_fact_totals(goals, through=dt.date(2026, 3, 15))
    assert totals[in_north.pk]["revenue_won"] == Decimal(60)
    assert totals[january.pk]["revenue_won"] == Decimal(760)
    assert totals[quarter.pk]["revenue_won"] == Decimal(3860)
    assert totals[month.pk]["revenue_won"] == Decimal(3000)
    assert totals[alpha.pk]["revenue_won"] == Decimal(1000)
    assert totals[deals.pk]["deals_won"] == 2
    assert totals[late.pk]["revenue_won"] == Decimal(3100)
    # Without the territory goal, January comes from the weekly sums: the same figures.
    again = dash.goal_fact_totals([quarter, january], through=dt.date(2026, 3, 15))
    assert again[quarter.pk]["revenue_won"] == Decimal(3860)
    assert again[january.pk]["revenue_won"] == Decimal(760)
    assert totals[teammate.pk]["revenue_won"] == Decimal(4000)


def test_goal_windows_are_cut_into_disjoint_segments() -> None:
    quarter = (dt.date(2026, 1, 1), dt.date(2026, 3, 15))
    month = (dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    late = (dt.date(2026, 4, 3), dt.date(2026, 4, 5))
    assert dash._segments([quarter, month, month, late]) == [
        (dt.date(2026, 1, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 15)),
        (dt.date(2026, 4, 3), dt.date(2026, 4, 5)),  # the gap before it is no segment
    ]
    assert dash._segments([]) == []


# --- Estimate coverage ------------------------------------------------------------------


def test_coverage_per_rep_and_product_line_flags_below_standard(cast: Cast) -> None:
    line_a, line_b = ProductLineFactory(name="Alpha"), ProductLineFactory(name="Beta")
    estimate(owner=cast.rep, issued_on=dt.date(2026, 3, 4), amount="3000", line=line_a)
    estimate(owner=cast.rep, issued_on=dt.date(2026, 3, 5), amount="500", line=line_b)
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    make_goal(cast.rep, "1000", line=line_a)  # Alpha: 3000 / 1000 = 3.0, meets the standard
    make_goal(cast.rep, "2000")  # unnarrowed; Beta has no goal of its own: 2000 / 2 lines
    response = client_for(cast.manager).get(reverse("goals:team_dashboard", args=[cast.team.pk]))
    [march] = response.context["coverage"]
    [row] = [row for row in march.rows if row.label == "Alice Rep"]
    alpha, beta = row.cells
    assert (alpha.coverage, alpha.below_standard) == (Decimal(3), False)
    assert beta.quota == Decimal(1000)
    assert (beta.coverage, beta.below_standard) == (Decimal("0.5"), True)
    [teammate_row] = [row for row in march.rows if row.label == "Bob Rep"]
    assert all(cell.quota is None for cell in teammate_row.cells)
    assert 'data-flag="low"' in response.content.decode()


def test_a_month_without_a_revenue_goal_has_no_quota(cast: Cast) -> None:
    line = ProductLineFactory(name="Alpha")
    january = make_goal(cast.rep, "3000", start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    issued = {(cast.rep.pk, line.pk, dt.date(2026, 2, 1)): Decimal(500)}
    table = dash.coverage_table(
        groups=[("Alice", [cast.rep])],
        lines=[line],
        goals_by_rep={cast.rep.pk: [january]},
        issued=issued,
        months=[
            (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
            (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ],
    )
    [[jan_cell]], [[feb_cell]] = ([row.cells for row in month.rows] for month in table)
    assert (jan_cell.quota, jan_cell.issued) == (Decimal(3000), Decimal(0))
    assert (feb_cell.quota, feb_cell.issued, feb_cell.coverage) == (None, Decimal(500), None)


def test_quota_prorated_to_a_month_of_a_quarter_goal(cast: Cast) -> None:
    goal = make_goal(cast.rep, "9000", start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31))
    quota = dash.rep_quota([goal], dt.date(2026, 3, 1), dt.date(2026, 3, 31), ())
    assert quota == Decimal(9000) * 31 / 90


# --- Funnel ---------------------------------------------------------------------------


def test_funnel_conversions_between_stages(cast: Cast) -> None:
    created = local(2026, 3, 3)
    for stage, mql, sql in [
        (Stage.SUSPECT, None, None),
        (Stage.SUSPECT, None, None),
        (Stage.MQL, local(2026, 3, 4), None),
        (Stage.SQL, local(2026, 3, 4), local(2026, 3, 5)),
    ]:
        lead(owner=cast.rep, created=created, stage=stage, mql=mql, sql=sql)
    lead(
        owner=cast.rep,
        created=created,
        stage=Stage.WON,
        mql=local(2026, 3, 4),
        sql=local(2026, 3, 5),
        decided=local(2026, 3, 6),
    )
    compute_facts_range(dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    response = client_for(cast.rep).get(reverse("goals:rep_dashboard", args=[cast.rep.pk]))
    steps = response.context["funnel"]
    assert [step.count for step in steps] == [5, 3, 2, 1]
    assert [step.conversion for step in steps] == [
        None,
        Decimal(3) / Decimal(5),
        Decimal(2) / Decimal(3),
        Decimal(1) / Decimal(2),
    ]
    assert steps[3].share == Decimal("0.2")


# --- A rep never sees another rep's own figures -----------------------------------------


def test_rep_sees_own_figures_and_only_the_team_average(sales: Cast) -> None:
    response = client_for(sales.rep).get(reverse("goals:rep_dashboard", args=[sales.rep.pk]))
    html = response.content.decode()
    assert kpi_value(html, "sales_volume").startswith("3,000")
    # Team of two: (3000 + 4000) / 2 = 3500 on average; the teammate's 4000 is not shown.
    assert "3,500" in html
    assert "4,000" not in html
    assert "Bob Rep" not in html
    assert "Charlie Rep" not in html and "9,000" not in html
    assert '<div id="reminders-panel"' in html
    assert "2 of 2 in the team" in html  # by revenue: Bob 4000, Alice 3000


def test_rep_dashboard_shows_the_reps_own_open_reminders(cast: Cast) -> None:
    reminder_for(cast.rep, title="Call back Acme", due_on=TODAY)
    reminder_for(cast.teammate, title="Teammate private business", due_on=TODAY)
    url = reverse("goals:rep_dashboard", args=[cast.rep.pk])
    html = client_for(cast.rep).get(url).content.decode()
    assert "Call back Acme" in html and "Teammate private business" not in html
    # Their manager looking at the rep's dashboard sees the rep's reminders, not their own.
    assert "Call back Acme" in client_for(cast.manager).get(url).content.decode()
    empty = client_for(cast.teammate).get(reverse("goals:rep_dashboard", args=[cast.other_rep.pk]))
    assert empty.status_code == 404


def test_rep_dashboard_lists_open_todos_and_flags_overdue(cast: Cast) -> None:
    activity(owner=cast.rep, at=local(2026, 3, 10), due=local(2026, 3, 12), kind="call")
    activity(owner=cast.rep, at=local(2026, 3, 10), due=local(2026, 3, 20))
    activity(owner=cast.rep, at=local(2026, 3, 10), due=local(2026, 3, 11), done=local(2026, 3, 11))
    activity(owner=cast.teammate, at=local(2026, 3, 10), due=local(2026, 3, 11))
    html = client_for(cast.rep).get(reverse("goals:rep_dashboard", args=[cast.rep.pk])).content
    html = html.decode()
    assert html.count('data-testid="todo"') == 2
    assert html.count('data-overdue="1"') == 1


# --- The period picker -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "custom", "start": "2026-03-10"}, "give both its first and last day"),
        ({"period": "custom", "start": "2026-03-10", "end": "2026-03-01"}, "before its first"),
        ({"period": "custom", "start": "2020-01-01", "end": "2026-03-01"}, "two years at most"),
        ({"period": "custom", "start": "not a date", "end": "2026-03-01"}, "valid date"),
        ({"period": "someday"}, "Select a valid choice"),
    ],
)
def test_bad_period_gets_a_message_and_this_month(cast: Cast, params: dict, message: str) -> None:
    response = client_for(cast.rep).get(reverse("goals:rep_dashboard", args=[cast.rep.pk]), params)
    assert response.status_code == 200
    assert message in response.content.decode()
    period = response.context["period"]
    assert (period.start, period.end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def test_period_picker_keeps_the_chosen_period(cast: Cast) -> None:
    params = {"period": "custom", "start": "2026-02-01", "end": "2026-03-01"}
    response = client_for(cast.manager).get(
        reverse("goals:team_dashboard", args=[cast.team.pk]), params
    )
    html = response.content.decode()
    assert re.search(r'<label class="form-label" for="id_period">Period</label>', html)
    assert re.search(r'<select name="period" class="form-select" id="id_period">', html)
    assert '<option value="custom" selected>' in html
    start = re.search(r'<input[^>]*name="start"[^>]*>', html).group(0)
    assert 'class="form-control"' in start and 'value="2026-02-01"' in start


@pytest.mark.parametrize(
    ("params", "bounds"),
    [
        ({"period": "last_month"}, (dt.date(2026, 2, 1), dt.date(2026, 2, 28))),
        ({"period": "this_quarter"}, (dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        ({"period": "this_year"}, (dt.date(2026, 1, 1), dt.date(2026, 12, 31))),
        (
            {"period": "custom", "start": "2025-12-15", "end": "2026-01-14"},
            (dt.date(2025, 12, 15), dt.date(2026, 1, 14)),
        ),
    ],
)
def test_period_choices(cast: Cast, params: dict, bounds: tuple) -> None:
    response = client_for(cast.admin).get(reverse("goals:company_dashboard"), params)
    period = response.context["period"]
    assert (period.start, period.end) == bounds


def test_previous_period_of_a_past_month_is_as_long() -> None:
    period = dash.period_for("last_month", TODAY)
    assert period.previous == (dt.date(2026, 1, 4), dt.date(2026, 1, 31))  # 28 days


# --- Query counts: the same for 1 and many reps ----------------------------------------


def busy_team(cast: Cast, count: int) -> None:
    line = ProductLineFactory()
    for n in range(count):
        rep = UserFactory(team=cast.team)
        day = dt.date(2026, 3, 1 + n % 14)
        won = lead(owner=rep, created=local(2026, 3, 1), stage=Stage.WON, decided=local(2026, 3, 2))
        deal(owner=rep, close_date=day, lead=won, amount=1000 + n, line=line)
        estimate(owner=rep, issued_on=day, line=line, lead=won)
        estimate(owner=rep, issued_on=None, line=line)
        activity(owner=rep, at=local(2026, 3, 2), due=local(2026, 3, 20))
        make_goal(rep, "5000")
        make_goal(rep, "500", line=line)
    compute_facts_range(dt.date(2026, 2, 1), dt.date(2026, 3, 15))


# Team dashboard, whatever the number of reps, goals and rows:
#  1-2. session and user;  3. the team (scoped);  4. its members;
#  5. facts of the period by rep, line, week and month, and of the previous
#  period by rep (one scan);  6-7. rep goals and their revisions;
#  8. each goal's facts;  9. raw won deals of this and the previous period
#  (median cycle, repeat customers);  10. product lines;  11. the weighted pipeline
#  by rep;  12. the team picker;  and 13-15. the transaction planning them without
#  parallel workers (a savepoint inside a test's transaction, SET LOCAL, release).
TEAM_QUERIES = 15
# Company: no team lookup or member list, but "the people" (reps and whoever has facts).
COMPANY_QUERIES = 11
# Rep: session, user, the rep (scoped), team member ids, the team's facts of the
# period and the previous one (one scan: the rep's own figures and charts, the
# team's total to average), goals, revisions, goals' facts, raw deals, lines,
# pipeline, company revenue by rep and the people (ranks), the to-dos, the rep's
# open reminders (fewer than ten: no count); and the transaction without parallel
# workers (savepoint, SET LOCAL, release).
REP_QUERIES = 18


@pytest.mark.parametrize("count", [1, 6])
def test_dashboard_query_counts_do_not_grow(
    cast: Cast, django_assert_num_queries, count: int
) -> None:
    busy_team(cast, count)
    manager, admin = client_for(cast.manager), client_for(cast.admin)
    rep = User.objects.filter(team=cast.team).exclude(pk__in=[cast.rep.pk, cast.teammate.pk])[0]
    rep_client = client_for(rep)
    team_url = reverse("goals:team_dashboard", args=[cast.team.pk])
    with django_assert_num_queries(TEAM_QUERIES):
        assert manager.get(team_url).status_code == 200
    with django_assert_num_queries(COMPANY_QUERIES):
        assert admin.get(reverse("goals:company_dashboard")).status_code == 200
    with django_assert_num_queries(REP_QUERIES):
        assert rep_client.get(reverse("goals:rep_dashboard", args=[rep.pk])).status_code == 200


@pytest.mark.parametrize("won", ["3100", "1500", "1300", "1200", "500", "0"])
def test_dashboard_and_goal_pages_give_a_goal_the_same_status(won: str) -> None:
    """The same pace is called the same on the dashboards and on the goal pages."""
    from goals.selectors import goal_status

    goal = Goal(
        owner_kind=OwnerKind.COMPANY,
        period_kind=PeriodKind.MONTH,
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 3, 31),
        metric=Metric.REVENUE_WON,
        target=Decimal("3100"),
    )
    last_day = dt.date(2026, 3, 15)
    pace_value = dash.pace(Decimal(won), goal.target, goal.start, goal.end, last_day)
    assert dash.pace_status(pace_value) == goal_status(goal, Decimal(won), goal.target, last_day)
