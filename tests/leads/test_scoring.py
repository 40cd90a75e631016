"""Explainable lead scoring and the learned win probability (leads/scoring.py)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from leads import tasks
from leads.models import (
    ActivityKind,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadSource,
    Stage,
    Temperature,
    WinModel,
)
from leads.scoring import (
    lead_rescore,
    leads_rescore_open,
    scoring_config,
    win_model_recompute,
    win_probability,
)
from leads.services import lead_create
from tests.conftest import Cast
from tests.factories import ProductLineFactory, TerritoryFactory, UserFactory
from tests.factories_leads import ActivityFactory, CustomerFactory, LeadFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)

# The weights these tests are written against, whatever the installation sets.
SCORING: dict[str, Any] = {
    "source": {"referral": 20, "webinar": 12, "purchased_list": 2},
    "temperature": {"hot": 20, "warm": 10, "cold": 0},
    "territory_covered": 5,
    "product_line_active": 5,
    "engagement_days": 30,
    "engagement_points_per_contact": 3,
    "engagement_max_points": 15,
    "completeness": {"email": 3, "phone": 3, "contact_name": 2, "company": 2},
    "decay_after_days": 14,
    "decay_points_per_week": 5,
    "decay_max_points": 30,
    "probability_points": 30,
    "win_model_history_days": 730,
    "win_model_keep": 3,
}


@pytest.fixture(autouse=True)
def scoring_weights(settings: Any) -> None:
    settings.LEAD_SCORING = SCORING


@pytest.fixture
def at_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def make_lead(**kwargs: Any) -> Lead:
    """A lead written directly (any state), created at NOW unless told otherwise."""
    created = kwargs.pop("created_at", NOW)
    lines = kwargs.pop("product_lines", [])
    data = {
        "source": LeadSource.WEBINAR,
        "temperature": Temperature.COLD,
        "email": "",
        "phone": "",
        "contact_name": "",
        "company_name": "",
        "owner": None,
    }
    with time_machine.travel(created, tick=False):
        lead = LeadFactory(**{**data, **kwargs})
    if lines:
        lead.product_lines.set(lines)
    return lead


def lines(lead: Lead) -> dict[str, tuple[int, str]]:
    return {line["rule"]: (line["points"], line["detail"]) for line in lead.score_breakdown}


def points(lead: Lead, rule: str) -> int:
    return lines(lead)[rule][0]


def rescored(lead: Lead, now: dt.datetime = NOW) -> Lead:
    lead_rescore(lead=lead, now=now)
    lead.refresh_from_db()
    return lead


def contact(lead: Lead, *, days_ago: float, **kwargs: Any) -> None:
    ActivityFactory(
        lead=lead, customer=None, occurred_at=NOW - dt.timedelta(days=days_ago), **kwargs
    )


# --- The rules, one by one ----------------------------------------------------------


def test_full_breakdown_explains_the_score(at_now: None) -> None:
    territory = TerritoryFactory()
    UserFactory(role=Role.REP).territories.add(territory)
    lead = make_lead(
        source=LeadSource.REFERRAL,
        temperature=Temperature.HOT,
        territory=territory,
        product_lines=[ProductLineFactory()],
        email="anna@example.org",
        phone="+46 8 123",
        contact_name="Anna",
        company_name="Anna AB",
    )
    contact(lead, days_ago=2)
    lead = rescored(lead)

    assert lead.score_breakdown == [
        {"rule": "Source", "points": 20, "detail": "Referral from a customer"},
        {"rule": "Temperature", "points": 20, "detail": "Hot"},
        {"rule": "Fit: territory", "points": 5, "detail": "An active rep covers it"},
        {"rule": "Fit: product line", "points": 5, "detail": "Asks for a product we sell"},
        {"rule": "Engagement", "points": 3, "detail": "1 contact in the last 30 days"},
        {"rule": "Contact data", "points": 10, "detail": "email, phone, name, company"},
        {"rule": "No recent contact", "points": 0, "detail": "In touch within 14 days"},
        {
            "rule": "Learned win probability",
            "points": 0,
            "detail": "No won or lost leads to learn from yet",
        },
    ]
    assert lead.score == 63
    assert lead.win_probability is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (LeadSource.REFERRAL, 20),
        (LeadSource.WEBINAR, 12),
        (LeadSource.PURCHASED_LIST, 2),
        (LeadSource.OTHER, 0),  # not in the weights: no points
    ],
)
def test_source_points(source: str, expected: int) -> None:
    assert points(rescored(make_lead(source=source)), "Source") == expected


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [(Temperature.HOT, 20), (Temperature.WARM, 10), (Temperature.COLD, 0), ("", 0)],
)
def test_temperature_points(temperature: str, expected: int) -> None:
    assert points(rescored(make_lead(temperature=temperature)), "Temperature") == expected


def test_territory_fit_needs_an_active_rep_covering_an_active_territory() -> None:
    covered, uncovered, closed = TerritoryFactory(), TerritoryFactory(), TerritoryFactory()
    closed.is_active = False
    closed.save()
    UserFactory(role=Role.REP).territories.add(covered, closed)
    UserFactory(role=Role.REP, is_active=False).territories.add(uncovered)
    UserFactory(role=Role.MANAGER).territories.add(uncovered)

    assert lines(rescored(make_lead(territory=covered)))["Fit: territory"][0] == 5
    assert lines(rescored(make_lead(territory=uncovered)))["Fit: territory"] == (
        0,
        "No active rep covers it",
    )
    assert points(rescored(make_lead(territory=closed)), "Fit: territory") == 0
    assert lines(rescored(make_lead()))["Fit: territory"] == (0, "No territory")


def test_product_line_fit_needs_a_line_still_sold() -> None:
    sold, retired = ProductLineFactory(), ProductLineFactory(is_active=False)

    assert points(rescored(make_lead(product_lines=[retired, sold])), "Fit: product line") == 5
    assert lines(rescored(make_lead(product_lines=[retired])))["Fit: product line"] == (
        0,
        "Only product lines no longer sold",
    )
    assert lines(rescored(make_lead()))["Fit: product line"] == (0, "No product line given")


def test_engagement_counts_recent_contacts_only_and_is_capped() -> None:
    lead = make_lead()
    contact(lead, days_ago=1)
    contact(lead, days_ago=29)
    contact(lead, days_ago=31)  # too old
    contact(lead, days_ago=1, kind=ActivityKind.NOTE)  # a note is no contact
    contact(lead, days_ago=-1)  # in the future: not yet
    # A planned call not yet done is a to-do, not a contact.
    contact(lead, days_ago=1, due_at=NOW + dt.timedelta(days=1))
    contact(lead, days_ago=3, due_at=NOW - dt.timedelta(days=2), done_at=NOW)

    assert lines(rescored(lead))["Engagement"] == (9, "3 contacts in the last 30 days")

    for _ in range(5):
        contact(lead, days_ago=2)
    assert lines(rescored(lead))["Engagement"] == (15, "8 contacts in the last 30 days")


@pytest.mark.parametrize(
    ("fields", "expected", "detail"),
    [
        ({}, 0, "nothing given"),
        ({"email": "a@example.org"}, 3, "email"),
        ({"phone": "+46 8 1"}, 3, "phone"),
        ({"contact_name": "Anna"}, 2, "name"),
        ({"company_name": "Anna AB"}, 2, "company"),
        ({"email": "a@example.org", "contact_name": "Anna"}, 5, "email, name"),
    ],
)
def test_completeness_points(fields: dict[str, str], expected: int, detail: str) -> None:
    assert lines(rescored(make_lead(**fields)))["Contact data"] == (expected, detail)


def test_a_known_customer_counts_as_the_company() -> None:
    lead = make_lead(customer=CustomerFactory())
    assert lines(rescored(lead))["Contact data"] == (2, "company")


@pytest.mark.parametrize(
    ("quiet_days", "expected"),
    [(0, 0), (13, 0), (14, -5), (20, -5), (21, -10), (34, -15), (35, -20), (100, -30), (400, -30)],
)
def test_decay_grows_weekly_after_days_without_contact(quiet_days: int, expected: int) -> None:
    never_contacted = make_lead(created_at=NOW - dt.timedelta(days=quiet_days))
    assert points(rescored(never_contacted), "No recent contact") == expected

    # An old lead contacted `quiet_days` ago decays the same: the last contact counts.
    contacted = make_lead(
        created_at=NOW - dt.timedelta(days=500),
        last_contact_at=NOW - dt.timedelta(days=quiet_days, hours=1),
    )
    assert points(rescored(contacted), "No recent contact") == expected


def test_decay_detail_names_the_day() -> None:
    lead = make_lead(
        created_at=NOW - dt.timedelta(days=90),
        last_contact_at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    )
    assert lines(rescored(lead))["No recent contact"] == (-15, "No contact since Feb. 1, 2026")
    lead = make_lead(created_at=dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC))
    assert lines(rescored(lead))["No recent contact"][1] == (
        "Never contacted since it came in on Jan. 5, 2026"
    )


def test_contact_logged_through_the_service_stops_the_decay(cast: Cast) -> None:
    from leads.services import activity_log

    lead = make_lead(created_at=NOW - dt.timedelta(days=30))
    assert points(rescored(lead), "No recent contact") == -15
    activity_log(
        actor=cast.rep,
        kind=ActivityKind.CALL,
        subject="Intro call",
        occurred_at=NOW - dt.timedelta(hours=2),
        lead=lead,
    )
    lead = rescored(lead)
    assert points(lead, "No recent contact") == 0
    assert points(lead, "Engagement") == 3


# --- Clamping and history -------------------------------------------------------------


def test_score_is_capped_at_100_and_the_lines_still_add_up(settings: Any) -> None:
    settings.LEAD_SCORING = {**SCORING, "source": {"referral": 90}}
    lead = rescored(make_lead(source=LeadSource.REFERRAL, temperature=Temperature.HOT))

    assert lead.score == 100
    assert lines(lead)["Kept between 0 and 100"] == (-10, "The score runs from 0 to 100")
    assert sum(line["points"] for line in lead.score_breakdown) == 100


def test_score_never_goes_below_0() -> None:
    lead = rescored(
        make_lead(source=LeadSource.PURCHASED_LIST, created_at=NOW - dt.timedelta(days=365))
    )

    assert lead.score == 0
    # 2 (source) - 30 (decay) = -28, brought back to 0 by the last line.
    assert lines(lead)["Kept between 0 and 100"][0] == 28
    assert sum(line["points"] for line in lead.score_breakdown) == 0


def test_score_event_only_when_the_score_changes() -> None:
    lead = make_lead(source=LeadSource.REFERRAL)  # stored score 0
    rescored(lead)
    rescored(lead)

    events = list(LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.SCORE))
    assert [(e.from_value, e.to_value, e.reason, e.actor) for e in events] == [
        ("0", "20", "rules", None)
    ]

    contact(lead, days_ago=1)
    rescored(lead)
    events = LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.SCORE).order_by("pk")
    assert [(e.from_value, e.to_value) for e in events] == [("0", "20"), ("20", "23")]


def test_partial_setting_overrides_only_its_keys(settings: Any) -> None:
    settings.LEAD_SCORING = {"probability_points": 50}
    config = scoring_config()
    assert config["probability_points"] == 50
    assert config["temperature"]["hot"] > config["temperature"]["warm"]


def test_new_lead_through_the_service_is_scored(cast: Cast, at_now: None) -> None:
    lead = lead_create(
        actor=cast.rep,
        source=LeadSource.REFERRAL,
        contact_name="Anna",
        email="anna@example.org",
        timeframe=NOW.date() + dt.timedelta(days=10),
        now=NOW,
    )
    lead.refresh_from_db()
    # 20 (referral) + 20 (hot from the timeframe) + 5 (email and name).
    assert lead.score == 45
    assert lead.events.filter(kind=LeadEventKind.SCORE).get().to_value == "45"


# --- The learned probability ---------------------------------------------------------


@pytest.fixture
def history() -> dict[str, Any]:
    """Five decided leads: 2 won, 2 lost and 1 disqualified (not won)."""
    north, south = TerritoryFactory(name="North"), TerritoryFactory(name="South")
    boxes, cables = ProductLineFactory(name="Boxes"), ProductLineFactory(name="Cables")
    decided = NOW - dt.timedelta(days=10)
    for source, temperature, territory, product_lines, stage, reason in [
        (LeadSource.REFERRAL, "hot", north, [boxes], Stage.WON, ""),
        (LeadSource.REFERRAL, "warm", north, [boxes], Stage.WON, ""),
        (LeadSource.PURCHASED_LIST, "cold", south, [cables], Stage.LOST, "price"),
        (LeadSource.REFERRAL, "cold", south, [], Stage.DISQUALIFIED, "no_budget"),
        (LeadSource.PURCHASED_LIST, "hot", north, [boxes, cables], Stage.LOST, "price"),
    ]:
        make_lead(
            source=source,
            temperature=temperature,
            territory=territory,
            product_lines=product_lines,
            stage=stage,
            lost_reason=reason,
            decided_at=decided,
        )
    # Neither open leads nor leads decided before the history window count.
    make_lead(source=LeadSource.REFERRAL, territory=north, stage=Stage.SQL)
    make_lead(
        source=LeadSource.REFERRAL,
        stage=Stage.WON,
        decided_at=NOW - dt.timedelta(days=800),
        created_at=NOW - dt.timedelta(days=900),
    )
    return {"north": north, "south": south, "boxes": boxes, "cables": cables}


def test_win_model_counts_won_and_not_won_per_feature_value(history: dict[str, Any]) -> None:
    model = win_model_recompute(now=NOW)

    north, south = str(history["north"].pk), str(history["south"].pk)
    boxes, cables = str(history["boxes"].pk), str(history["cables"].pk)
    assert (model.won, model.lost) == (2, 3)
    assert model.counts == {
        "source": {"referral": [2, 1], "purchased_list": [0, 2]},
        "temperature": {"hot": [1, 1], "warm": [1, 0], "cold": [0, 2]},
        "territory": {north: [2, 1], south: [0, 2]},
        "product_line": {boxes: [2, 1], cables: [0, 2]},
    }


def test_win_model_keeps_the_newest_few(history: dict[str, Any]) -> None:
    made = []
    for hour in range(5):
        with time_machine.travel(NOW + dt.timedelta(hours=hour), tick=False):
            made.append(win_model_recompute(now=NOW).pk)
    assert sorted(WinModel.objects.values_list("pk", flat=True)) == made[-3:]


def test_learned_probability_is_naive_bayes_with_laplace_smoothing(
    history: dict[str, Any],
) -> None:
    win_model_recompute(now=NOW)
    lead = rescored(
        make_lead(
            source=LeadSource.REFERRAL,
            temperature=Temperature.HOT,
            territory=history["north"],
            product_lines=[history["boxes"]],
        )
    )

    # By hand: W = 2 won, L = 3 not won; (count + 1) / (class total + values seen).
    won = (
        Fraction(2 + 1, 5 + 2)  # prior
        * Fraction(2 + 1, 2 + 2)  # referral: 2 of 2 won; 2 sources seen
        * Fraction(1 + 1, 2 + 3)  # hot: 1 won; 3 temperatures seen
        * Fraction(2 + 1, 2 + 2)  # North: 2 won; 2 territories
        * Fraction(2 + 1, 2 + 2)  # Boxes: 2 won; 2 product lines
    )
    lost = (
        Fraction(3 + 1, 5 + 2)
        * Fraction(1 + 1, 3 + 2)
        * Fraction(1 + 1, 3 + 3)
        * Fraction(1 + 1, 3 + 2)
        * Fraction(1 + 1, 3 + 2)
    )
    p = won / (won + lost)  # = 0.8557…
    expected = (Decimal(p.numerator) / Decimal(p.denominator)).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_UP
    )
    assert lead.win_probability == expected == Decimal("0.8558")
    assert lines(lead)["Learned win probability"] == (26, "85.6% of similar leads are won")


def test_unseen_and_empty_values(history: dict[str, Any]) -> None:
    model = win_model_recompute(now=NOW)
    new_territory = TerritoryFactory()

    # A territory never seen: counts 0/0 over 3 values (2 seen + the new one).
    got = win_probability(
        model, source="", product_line_ids=[], territory_id=new_territory.pk, temperature=""
    )
    won = Fraction(3, 7) * Fraction(1, 2 + 3)
    lost = Fraction(4, 7) * Fraction(1, 3 + 3)
    p = won / (won + lost)
    assert got == Decimal(p.numerator / p.denominator).quantize(Decimal("0.0001"))

    # Nothing known about the lead: the prior alone, (2+1)/(5+2).
    prior = win_probability(
        model, source="", product_line_ids=[], territory_id=None, temperature=""
    )
    assert prior == Decimal("0.4286")


def test_each_product_line_is_evidence(history: dict[str, Any]) -> None:
    model = win_model_recompute(now=NOW)
    boxes, cables = history["boxes"].pk, history["cables"].pk

    def p(line_ids: list[int]) -> Decimal | None:
        return win_probability(
            model, source="", product_line_ids=line_ids, territory_id=None, temperature=""
        )

    assert p([boxes]) > p([]) > p([boxes, cables]) > p([cables])


def test_no_history_no_probability() -> None:
    assert (
        win_probability(
            None, source="referral", product_line_ids=[], territory_id=None, temperature="hot"
        )
        is None
    )
    empty = win_model_recompute(now=NOW)
    assert (empty.won, empty.lost) == (0, 0)
    assert (
        win_probability(
            empty, source="referral", product_line_ids=[], territory_id=None, temperature="hot"
        )
        is None
    )


# --- Rescoring the open leads ----------------------------------------------------------


def test_rescore_open_leads_only_and_in_batches(history: dict[str, Any]) -> None:
    win_model_recompute(now=NOW)
    open_leads = [
        make_lead(source=LeadSource.REFERRAL, stage=stage)
        for stage in (Stage.SUSPECT, Stage.HOT, Stage.MQL, Stage.SQL, Stage.COLD)
    ]
    closed = make_lead(source=LeadSource.REFERRAL, stage=Stage.LOST, lost_reason="price")

    changed = leads_rescore_open(now=NOW, batch_size=2)

    # 5 new open leads plus the open one of the history; the closed ones keep score 0.
    assert changed == 6
    for lead in open_leads:
        lead.refresh_from_db()
        assert lead.score > 0
        assert lead.win_probability is not None
        assert lead.events.filter(kind=LeadEventKind.SCORE).count() == 1
    closed.refresh_from_db()
    assert (closed.score, closed.score_breakdown) == (0, [])
    assert not LeadEvent.objects.filter(lead__stage__in=[Stage.WON, Stage.LOST]).filter(
        kind=LeadEventKind.SCORE
    )

    # Safe to repeat: nothing changed, no new event.
    assert leads_rescore_open(now=NOW, batch_size=2) == 0
    assert LeadEvent.objects.filter(kind=LeadEventKind.SCORE).count() == 6

    # Two weeks later the decay moves every score once more.
    assert leads_rescore_open(now=NOW + dt.timedelta(days=14)) == 6


def test_rescore_open_matches_the_single_rescore(history: dict[str, Any]) -> None:
    win_model_recompute(now=NOW)
    lead = make_lead(
        source=LeadSource.REFERRAL,
        territory=history["north"],
        product_lines=[history["boxes"]],
        email="x@example.org",
        created_at=NOW - dt.timedelta(days=20),
    )
    contact(lead, days_ago=25)
    leads_rescore_open(now=NOW)
    lead.refresh_from_db()
    bulk = (lead.score, lead.score_breakdown, lead.win_probability)

    assert (rescored(lead).score, lead.score_breakdown, lead.win_probability) == bulk


def test_nightly_tasks(history: dict[str, Any]) -> None:
    lead = make_lead(source=LeadSource.REFERRAL, territory=history["north"])

    model_pk = tasks.recompute_win_model.delay(at=NOW.isoformat()).get()
    assert WinModel.objects.get(pk=model_pk).won == 2
    assert tasks.rescore_open_leads.delay(at=NOW.isoformat()).get() == 2
    lead.refresh_from_db()
    assert lead.win_probability is not None
    assert tasks.rescore_open_leads.delay(at=NOW.isoformat()).get() == 0


# --- Query counts -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 10])
def test_rescore_query_count_does_not_grow(size: int, history: dict[str, Any]) -> None:
    win_model_recompute(now=NOW)
    product_lines = [ProductLineFactory() for _ in range(size)]
    territory = TerritoryFactory()
    for _ in range(size):
        UserFactory(role=Role.REP).territories.add(territory)
    lead = make_lead(territory=territory, product_lines=product_lines)
    for day in range(size):
        contact(lead, days_ago=day + 1)

    with CaptureQueriesContext(connection) as queries:
        lead_rescore(lead=lead, now=NOW)
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # SAVEPOINT (the service's transaction), SELECT the lead with its product lines,
    # territory cover and recent contacts (subqueries), SELECT the newest win model,
    # UPDATE the lead, INSERT the SCORE event (the score changed), RELEASE SAVEPOINT.
    assert statements == ["SAVEPOINT", "SELECT", "SELECT", "UPDATE", "INSERT", "RELEASE"]


@pytest.mark.parametrize("size", [3, 12])
def test_rescore_open_query_count_per_batch(size: int) -> None:
    for _ in range(size):
        lead = make_lead(product_lines=[ProductLineFactory()])
        contact(lead, days_ago=1)

    with CaptureQueriesContext(connection) as queries:
        leads_rescore_open(now=NOW, batch_size=100)
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # SELECT the newest win model; then one batch: SAVEPOINT, SELECT … FOR UPDATE of
    # the leads with their features, UPDATE (bulk), INSERT (events), RELEASE; and the
    # empty batch that ends it: SAVEPOINT, SELECT, RELEASE.
    assert statements == [
        "SELECT",
        "SAVEPOINT",
        "SELECT",
        "UPDATE",
        "INSERT",
        "RELEASE",
        "SAVEPOINT",
        "SELECT",
        "RELEASE",
    ]
