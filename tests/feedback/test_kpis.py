"""Satisfaction KPIs against DESIGN.md: CSAT, NPS, response rate, case resolution
time, open and overdue cases; the raw daily counts the KPI job uses, on company
days (a daylight-saving day included), and the facts they give in goals."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from feedback import kpis, services
from feedback.selectors import (
    SurveyDayCounts,
    csat_score,
    nps_score,
    response_rate,
    satisfaction_table,
    survey_counts,
)
from tests.conftest import Cast
from tests.feedback.helpers import answer, customer_of, send_survey, won_deal

pytestmark = pytest.mark.django_db
ZONE = zoneinfo.ZoneInfo("Europe/Stockholm")
MARCH = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))


@pytest.fixture(autouse=True)
def _stockholm(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZONE)


# --- The formulas ---------------------------------------------------------------------------


def test_csat_is_the_share_of_answers_4_or_5_times_100() -> None:
    scores = [5, 4, 3, 2, 1]
    satisfied = sum(score >= 4 for score in scores)
    assert csat_score(satisfied, len(scores)) == Decimal(40)
    assert csat_score(3, 3) == Decimal(100)
    assert csat_score(0, 0) is None


def test_nps_is_percent_promoters_minus_percent_detractors() -> None:
    assert nps_score(promoters=2, detractors=2, answered=6) == Decimal(0)  # 10 9 8 7 6 0
    assert nps_score(promoters=3, detractors=1, answered=4) == Decimal(50)  # 10 10 9 6
    assert nps_score(promoters=0, detractors=4, answered=4) == Decimal(-100)
    assert nps_score(promoters=1, detractors=0, answered=3).quantize(Decimal("0.01")) == Decimal(
        "33.33"
    )
    assert nps_score(0, 0, 0) is None


def test_response_rate_is_answered_over_sent() -> None:
    assert response_rate(answered=3, sent=4) == Decimal("0.75")
    assert response_rate(0, 0) is None


# --- From the stored answers ------------------------------------------------------------------


def survey(
    rep: Any, *, sent: dt.datetime, answered: dt.datetime | None, csat: int, nps: int
) -> None:
    _invitation, token = send_survey(rep, now=sent)
    if answered is not None:
        answer(token, csat=csat, nps=nps, now=answered)


def test_csat_nps_and_response_rate_of_a_rep_in_a_month(cast: Cast) -> None:
    march = local(2025, 3, 3, 10)
    for csat, nps in [(5, 10), (4, 9), (3, 8), (2, 6), (1, 0)]:
        survey(cast.rep, sent=march, answered=march + dt.timedelta(days=1), csat=csat, nps=nps)
    survey(cast.rep, sent=march, answered=None, csat=0, nps=0)  # sent, never answered
    # Sent in March, answered in April: counts for March's response rate, April's scores.
    survey(cast.rep, sent=local(2025, 3, 28, 10), answered=local(2025, 4, 2, 10), csat=5, nps=10)
    table = satisfaction_table(rep_ids=[cast.rep.pk], start=MARCH[0], end=MARCH[1], now=march)
    figures = table.for_rep(cast.rep.pk)
    assert figures.csat_answered == 5
    assert figures.csat == Decimal(40)  # 2 of 5 answered 4 or 5
    assert figures.nps == Decimal(0)  # 2 promoters, 2 detractors of 5
    assert (figures.surveys_sent, figures.surveys_answered) == (7, 6)
    assert figures.response_rate == Decimal(6) / Decimal(7)
    april = satisfaction_table(
        rep_ids=[cast.rep.pk], start=dt.date(2025, 4, 1), end=dt.date(2025, 4, 30), now=march
    ).for_rep(cast.rep.pk)
    assert (april.csat, april.nps, april.surveys_sent) == (Decimal(100), Decimal(100), 0)


def test_team_and_total_figures_pool_the_answers(cast: Cast) -> None:
    when = local(2025, 3, 10, 10)
    survey(cast.rep, sent=when, answered=when, csat=5, nps=10)
    survey(cast.teammate, sent=when, answered=when, csat=1, nps=0)
    survey(cast.teammate, sent=when, answered=when, csat=4, nps=8)
    survey(cast.other_rep, sent=when, answered=when, csat=5, nps=9)
    reps = [cast.rep.pk, cast.teammate.pk, cast.other_rep.pk]
    table = satisfaction_table(rep_ids=reps, start=MARCH[0], end=MARCH[1], now=when)
    north = table.for_team(cast.team.pk)
    assert north.csat_answered == 3
    assert north.csat.quantize(Decimal("0.01")) == Decimal("66.67")  # not the mean of 100 and 50
    assert north.nps.quantize(Decimal("0.01")) == Decimal("0.00")  # 1 promoter, 1 detractor of 3
    assert table.for_team(cast.other_team.pk).nps == Decimal(100)
    assert table.total.csat == Decimal(75) and table.total.nps == Decimal(25)


def test_survey_counts_per_rep_and_company_day_over_daylight_saving(cast: Cast) -> None:
    # Summer time starts on Sunday 30 March 2025 at 02:00 in Stockholm.
    sent = local(2025, 3, 29, 12)
    survey(
        cast.rep, sent=sent, answered=dt.datetime(2025, 3, 29, 23, 30, tzinfo=dt.UTC), csat=5, nps=9
    )
    # 22:30 UTC on the 30th is already 00:30 on the 31st in summer time.
    survey(
        cast.rep, sent=sent, answered=dt.datetime(2025, 3, 30, 22, 30, tzinfo=dt.UTC), csat=2, nps=5
    )
    survey(cast.teammate, sent=sent, answered=None, csat=0, nps=0)
    rows = survey_counts(rep_ids=[cast.rep.pk, cast.teammate.pk], start=MARCH[0], end=MARCH[1])
    assert rows == [
        SurveyDayCounts(dt.date(2025, 3, 29), cast.rep.pk, surveys_sent=2, surveys_answered=2),
        SurveyDayCounts(dt.date(2025, 3, 29), cast.teammate.pk, surveys_sent=1),
        SurveyDayCounts(
            dt.date(2025, 3, 30),
            cast.rep.pk,
            csat_answered=1,
            csat_satisfied=1,
            nps_answered=1,
            nps_promoters=1,
        ),
        SurveyDayCounts(
            dt.date(2025, 3, 31), cast.rep.pk, csat_answered=1, nps_answered=1, nps_detractors=1
        ),
    ]
    # Only the reps asked for.
    assert {
        row.rep_id
        for row in survey_counts(rep_ids=[cast.teammate.pk], start=MARCH[0], end=MARCH[1])
    } == {cast.teammate.pk}


def test_case_kpis_median_resolution_hours_open_and_overdue(cast: Cast) -> None:
    opened = local(2025, 3, 3, 9)  # Monday
    hours = [2, 10, 30]
    for spent in hours:
        case = services.case_open(
            actor=cast.rep, customer=customer_of(cast.rep), summary="x", now=opened
        )
        services.case_change_status(
            case=case,
            actor=cast.rep,
            to_status="resolved",
            note="done",
            now=opened + dt.timedelta(hours=spent),
        )
    closed = services.case_open(
        actor=cast.rep, customer=customer_of(cast.rep), summary="x", now=opened
    )
    services.case_change_status(
        case=closed,
        actor=cast.rep,
        to_status="closed",
        note="no action",
        now=opened + dt.timedelta(hours=500),
    )
    services.case_open(actor=cast.rep, customer=customer_of(cast.rep), summary="late", now=opened)
    services.case_open(
        actor=cast.teammate,
        customer=customer_of(cast.teammate),
        summary="x",
        now=local(2025, 3, 20, 9),
    )
    now = local(2025, 3, 20, 10)
    table = satisfaction_table(
        rep_ids=[cast.rep.pk, cast.teammate.pk], start=MARCH[0], end=MARCH[1], now=now
    )
    rep = table.for_rep(cast.rep.pk)
    assert rep.resolution_median_hours == Decimal(10)  # closed without action is not a resolution
    assert (rep.cases_opened, rep.cases_resolved, rep.cases_open, rep.cases_overdue) == (5, 3, 1, 1)
    mate = table.for_rep(cast.teammate.pk)
    assert (mate.cases_open, mate.cases_overdue, mate.resolution_median_hours) == (1, 0, None)
    north = table.for_team(cast.team.pk)
    assert (north.cases_open, north.cases_overdue, north.resolution_median_hours) == (
        2,
        1,
        Decimal(10),
    )


# --- The facts of the nightly KPI job (goals) -----------------------------------------------------


def test_the_survey_facts_fill_the_daily_kpi_facts(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    goals_kpis = pytest.importorskip("goals.kpis")
    goals_selectors = pytest.importorskip("goals.selectors")
    monkeypatch.setattr(goals_kpis, "feedback_fact_sources", kpis.fact_sources)
    deal = won_deal(cast.rep)
    when = local(2025, 3, 10, 10)
    _invitation, token = send_survey(cast.rep, deal=deal, now=when)
    answer(token, csat=5, nps=10, now=when + dt.timedelta(days=1))
    survey(cast.rep, sent=when, answered=when, csat=2, nps=6)
    survey(cast.rep, sent=when, answered=None, csat=0, nps=0)
    goals_kpis.compute_facts_range(*MARCH)
    facts = goals_selectors.kpis_for(reps=[cast.rep.pk], start=MARCH[0], end=MARCH[1])
    mine = satisfaction_table(
        rep_ids=[cast.rep.pk], start=MARCH[0], end=MARCH[1], now=when
    ).for_rep(cast.rep.pk)
    assert (facts.csat, facts.nps) == (mine.csat, mine.nps) == (Decimal(50), Decimal(0))
    assert (facts.surveys_sent, facts.surveys_answered) == (3, 2)
    assert facts.survey_response_rate == mine.response_rate
    # The product line of the deal is on the answer's facts.
    line_facts = goals_selectors.kpis_for(
        reps=[cast.rep.pk], start=MARCH[0], end=MARCH[1], product_line=deal.product_line
    )
    assert line_facts.csat_answered == 1 and line_facts.csat == Decimal(100)


def test_an_answer_today_touches_the_day_its_survey_was_sent(cast: Cast) -> None:
    sent = local(2025, 3, 3, 10)
    answered = local(2025, 3, 20, 10)
    survey(cast.rep, sent=sent, answered=answered, csat=5, nps=10)
    days = kpis.touched_days(since=local(2025, 3, 20, 0), until=local(2025, 3, 21, 0))
    assert days == {dt.date(2025, 3, 3), dt.date(2025, 3, 20)}
