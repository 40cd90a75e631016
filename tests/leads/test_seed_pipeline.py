"""``seed_demo``'s sales pipeline: a year of history a user would believe, consistent
wherever they look (lead page, timeline, estimates, deals, dashboards).

The normal demo is seeded through the command with time frozen; the benchmark
generator is tried at a small size through the same COPY code path (chunks, the
background writer, the index rebuild) as the million-lead run.
"""

from __future__ import annotations

import zoneinfo
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, Q, Subquery, Sum

from accounts.management.commands import seed_demo
from accounts.models import ProductLine, Role, User
from leads import demo
from leads.models import (
    CONTACT_KINDS,
    OPEN_STAGES,
    Activity,
    ActivityKind,
    Contact,
    Customer,
    Deal,
    Estimate,
    Lead,
    LeadEvent,
    LeadSource,
    Stage,
)
from leads.services import temperature_for

pytestmark = pytest.mark.django_db

TZ = zoneinfo.ZoneInfo(settings.TIME_ZONE)
# The history (a year back) crosses both daylight-saving changes of 2025.
NOW = datetime(2026, 3, 20, 10, 30, tzinfo=TZ)
TODAY = NOW.date()
DEMO_REP_EMAILS = {
    "rep@example.com",
    "rep2@example.com",
    "rep.south@example.com",
    "ekaterina.volkova@example.com",
    "oskar.nystrom@example.com",
    "thiago.almeida@example.com",
    "larissa.ferreira@example.com",
    "pedro.costa@example.com",
    "chiara.esposito@example.com",
    "lorenzo.greco@example.com",
    "dmitri.sokolov@example.com",
    "emma.clarke@example.com",
}
PIPELINE_MODELS = (Activity, Deal, Estimate, LeadEvent, Lead, Contact, Customer)


def seed(**options: Any) -> str:
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def small_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo with fewer leads per rep: the same code, a fraction of the time."""
    monkeypatch.setattr(seed_demo, "PIPELINE_LEADS_PER_REP", (45, 60))
    seed()


@pytest.fixture
def full_demo() -> None:
    seed()


def pipeline_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in PIPELINE_MODELS}


# --- Checks any seeded data must pass (demo and benchmark) ----------------------


def assert_leads_consistent(leads: Any) -> None:
    """What a user would see contradicting itself on a lead page or a dashboard."""
    closed = [Stage.WON, Stage.LOST, Stage.DISQUALIFIED]
    # Lost and disqualified say why; won and open ones have no reason.
    assert not leads.filter(stage__in=[Stage.LOST, Stage.DISQUALIFIED], lost_reason="").exists()
    assert not leads.exclude(stage__in=[Stage.LOST, Stage.DISQUALIFIED]).exclude(lost_reason="")
    # Decided exactly when closed.
    assert not leads.filter(stage__in=closed, decided_at=None).exists()
    assert not leads.exclude(stage__in=closed).exclude(decided_at=None).exists()
    # The funnel: won and lost passed SQL, which passed MQL, in order, after creation.
    assert not leads.filter(stage__in=[Stage.SQL, Stage.WON, Stage.LOST], reached_sql_at=None)
    assert not leads.filter(reached_sql_at__isnull=False, reached_mql_at=None).exists()
    assert not leads.filter(stage__in=[Stage.SUSPECT, Stage.COLD, Stage.WARM, Stage.HOT]).exclude(
        reached_mql_at=None
    )
    assert not leads.filter(reached_mql_at__lt=F("created_at")).exists()
    assert not leads.filter(reached_sql_at__lt=F("reached_mql_at")).exists()
    assert not leads.filter(decided_at__lt=F("reached_sql_at")).exists()
    assert not leads.filter(decided_at__lt=F("created_at")).exists()
    # Won leads were won through a won deal; a lost lead's deals are not won.
    assert not leads.filter(stage=Stage.WON).exclude(deals__status="won").exists()
    assert not leads.filter(stage=Stage.LOST, deals__status="won").exists()
    # An open lead in a temperature stage shows the temperature of its timeframe today.
    for stage, timeframe, temperature in leads.filter(
        stage__in=[Stage.COLD, Stage.WARM, Stage.HOT]
    ).values_list("stage", "timeframe", "temperature"):
        assert stage == temperature == temperature_for(timeframe=timeframe, today=TODAY)
    # Every lead's temperature follows its timeframe (as of today, or of its decision).
    for timeframe, temperature, decided_at in leads.values_list(
        "timeframe", "temperature", "decided_at"
    ).iterator():
        day = decided_at.astimezone(TZ).date() if decided_at else TODAY
        assert temperature == temperature_for(timeframe=timeframe, today=day)
    # Scores: 0..100 and the sum of the lines shown.
    for score, breakdown in leads.values_list("score", "score_breakdown").iterator():
        assert 0 <= score <= 100
        assert breakdown and all(
            isinstance(line["rule"], str) and isinstance(line["points"], int) for line in breakdown
        )
        assert sum(line["points"] for line in breakdown) == score
    # Last contact: the latest contact activity done (a to-do not done is not a contact).
    latest_contact = (
        Activity.objects.filter(lead=OuterRef("pk"), kind__in=CONTACT_KINDS)
        .filter(Q(due_at=None) | Q(done_at__isnull=False))
        .order_by()
        .values("lead")
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    wrong = (
        leads.annotate(latest=Subquery(latest_contact))
        .exclude(last_contact_at=F("latest"))
        .exclude(last_contact_at=None, latest=None)
    )
    assert not wrong.exists()
    # Nothing happened today or later: the history ends before today.
    midnight = datetime.combine(TODAY, datetime.min.time(), tzinfo=TZ)
    assert not leads.filter(created_at__gte=midnight).exists()
    assert not leads.filter(decided_at__gte=midnight).exists()


def assert_sales_consistent(leads: Any) -> None:
    estimates = Estimate.objects.filter(lead__in=leads)
    deals = Deal.objects.filter(lead__in=leads)
    # No estimate counts as sent without the day it was issued; none issued in the future.
    assert not estimates.exclude(status="draft").filter(issued_on=None).exists()
    assert not estimates.filter(issued_on__gte=TODAY).exists()
    assert not estimates.filter(status__in=["draft", "sent"]).exclude(decided_on=None).exists()
    assert not estimates.filter(status__in=["accepted", "rejected", "expired"], decided_on=None)
    assert not estimates.filter(decided_on__lt=F("issued_on")).exists()
    assert not estimates.filter(status="sent", valid_until__lt=TODAY).exists()  # would be expired
    assert not estimates.filter(status="expired").exclude(decided_on=F("valid_until")).exists()
    # An accepted estimate became a won deal of the same amount and product line.
    assert not estimates.filter(status="accepted").exclude(deal__status="won").exists()
    assert not deals.exclude(estimate=None).exclude(amount=F("estimate__amount")).exists()
    assert not deals.exclude(estimate=None).exclude(product_line=F("estimate__product_line"))
    assert (
        not deals.filter(status="won").exclude(estimate=None).exclude(estimate__status="accepted")
    )
    # Deals: closed on the lead's decision day, for the lead's customer, by its owner.
    for close_date, decided_at in deals.values_list("close_date", "lead__decided_at").iterator():
        assert close_date == decided_at.astimezone(TZ).date()
    assert not deals.exclude(customer=F("lead__customer")).exists()
    assert not deals.exclude(lead_created_at=F("lead__created_at")).exists()
    assert not estimates.exclude(lead_stage=F("lead__stage")).exists()
    assert not deals.exclude(owner=F("lead__owner")).exists()
    assert not estimates.exclude(customer=F("lead__customer")).exists()
    assert not deals.filter(status="lost", lost_reason="").exists()
    assert not deals.filter(owner__role__in=[Role.MANAGER, Role.MARKETING, Role.ADMIN]).exists()
    # Money is whole and positive.
    assert not estimates.filter(amount__lte=0).exists()
    assert not deals.filter(amount__lte=0).exists()


def assert_timelines_tell_the_story(leads: Any) -> None:
    """Each lead's events, in order, lead from "created" to the stage it is in."""
    events: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in (
        LeadEvent.objects.filter(lead__in=leads)
        .exclude(kind="score")
        .order_by("lead", "created_at", "pk")
        .values_list("lead", "kind", "from_value", "to_value", "reason", "created_at")
    ):
        events[row[0]].append(row[1:])
    labels = dict(Lead._meta.get_field("lost_reason").choices)
    for lead in leads.select_related("owner").iterator():
        timeline = events[lead.pk]
        assert timeline[0][0] == "created", lead.pk
        assert timeline[0][4] == lead.created_at
        stage = timeline[0][2]
        times = [event[4] for event in timeline]
        assert times == sorted(times)
        for kind, before, after, reason, at in timeline[1:]:
            if kind == "stage":
                assert before == stage, (lead.pk, timeline)
                stage = after
                if after == lead.stage and lead.decided_at:
                    assert at == lead.decided_at
                if after in (Stage.LOST, Stage.DISQUALIFIED):
                    assert reason == str(labels[lead.lost_reason])
                if after == Stage.MQL:
                    assert at == lead.reached_mql_at
                if after == Stage.SQL:
                    assert at == lead.reached_sql_at
        assert stage == lead.stage, (lead.pk, timeline)
        owners = [event for event in timeline if event[0] == "owner"]
        if lead.owner is not None:
            assert [event[2] for event in owners] == [lead.owner.display_name]
        else:
            assert not owners


# --- The demo --------------------------------------------------------------------


def test_every_demo_rep_has_a_year_of_leads_in_every_stage(full_demo: None) -> None:
    reps = User.objects.filter(email__in=DEMO_REP_EMAILS)
    assert reps.count() == len(DEMO_REP_EMAILS)
    year_ago = datetime.combine(TODAY - timedelta(days=366), datetime.min.time(), tzinfo=TZ)
    for rep in reps:
        leads = Lead.objects.filter(owner=rep)
        assert 150 <= leads.count() <= 300, rep.email
        stages = Counter(leads.values_list("stage", flat=True))
        for stage in OPEN_STAGES:
            assert stages[stage] >= 2, (rep.email, stage, stages)
        for stage in (Stage.WON, Stage.LOST, Stage.DISQUALIFIED):
            assert stages[stage] >= 5, (rep.email, stage, stages)
        oldest, newest = leads.aggregate(Min("created_at"), Max("created_at")).values()
        assert year_ago <= oldest < year_ago + timedelta(days=30)
        assert newest > NOW - timedelta(days=7)
    # Marketing's unassigned leads wait in marketing stages (or were disqualified by marketing).
    unassigned = Lead.objects.filter(owner=None)
    assert unassigned.exists()
    assert not unassigned.filter(stage__in=[Stage.SQL, Stage.WON, Stage.LOST]).exists()


def test_most_decided_leads_are_lost_or_disqualified_and_a_quarter_won(small_demo: None) -> None:
    stages = Counter(Lead.objects.values_list("stage", flat=True))
    decided = stages[Stage.WON] + stages[Stage.LOST] + stages[Stage.DISQUALIFIED]
    assert 0.20 <= stages[Stage.WON] / decided <= 0.30
    sources = set(Lead.objects.values_list("source", flat=True))
    assert sources == set(LeadSource.values)
    # Close dates spread over the year, most months with won business.
    months = {
        (day.year, day.month)
        for day in Deal.objects.filter(status="won").values_list("close_date", flat=True)
    }
    assert len(months) >= 10


def test_demo_data_is_consistent_everywhere(full_demo: None) -> None:
    leads = Lead.objects.all()
    assert_leads_consistent(leads)
    assert_sales_consistent(leads)
    assert_timelines_tell_the_story(leads)


def test_deals_belong_to_the_demo_reps(small_demo: None) -> None:
    owners = set(Deal.objects.values_list("owner__email", flat=True).distinct())
    assert owners and owners <= DEMO_REP_EMAILS
    assert set(Estimate.objects.values_list("owner__email", flat=True)) <= DEMO_REP_EMAILS
    assert Deal.objects.filter(status="won").exists() and Deal.objects.filter(status="lost")
    assert set(Deal.objects.filter(status="lost").values_list("lost_reason", flat=True)) >= {
        "price",
        "competitor",
        "no_budget",
    }


def test_estimates_in_every_status_per_product_line(small_demo: None) -> None:
    statuses = Counter(Estimate.objects.values_list("status", flat=True))
    assert set(statuses) == {"draft", "sent", "accepted", "rejected", "expired"}
    assert statuses["sent"] >= 10 and statuses["accepted"] >= 20
    lines = set(Estimate.objects.values_list("product_line__name", flat=True))
    assert lines == set(ProductLine.objects.values_list("name", flat=True))
    # Each estimate is for a product line the lead asked about.
    asked = set(Lead.product_lines.through.objects.values_list("lead_id", "productline_id"))
    assert set(Estimate.objects.values_list("lead_id", "product_line_id")) <= asked


def test_customers_are_companies_and_people_who_speak_their_territorys_language(
    small_demo: None,
) -> None:
    kinds = Counter(Customer.objects.values_list("kind", flat=True))
    assert kinds["company"] > kinds["person"] > 0
    assert not Customer.objects.filter(contacts=None).exists()
    assert not Customer.objects.filter(email="").exists()
    # One primary contact each; companies have more people.
    assert not Customer.objects.annotate(
        primaries=Count("contacts", filter=Q(contacts__is_primary=True))
    ).exclude(primaries=1)
    assert Customer.objects.filter(kind="company").annotate(n=Count("contacts")).filter(n__gt=1)
    expected = {
        "stockholm": "sv",
        "gothenburg": "sv",
        "malmo": "sv",
        "sao-paulo": "pt-br",
        "rio-de-janeiro": "pt-br",
        "milan": "it",
        "rome": "it",
        "moscow": "ru",
        "saint-petersburg": "ru",
    }
    for code, language in Customer.objects.exclude(territory__code="online").values_list(
        "territory__code", "language"
    ):
        assert language == expected[code]
    assert not Contact.objects.exclude(language=F("customer__language")).exists()
    # Customers belong to the rep who sold to them.
    assert not Deal.objects.exclude(customer__owner=F("owner")).exists()


def test_some_customers_buy_again(small_demo: None) -> None:
    repeat = Customer.objects.annotate(won=Count("deals", filter=Q(deals__status="won"))).filter(
        won__gt=1
    )
    assert repeat.count() >= 5
    # …on more than one occasion (leads), not only two lines of one sale.
    assert (
        Customer.objects.annotate(
            won_leads=Count("leads", filter=Q(leads__stage=Stage.WON), distinct=True)
        )
        .filter(won_leads__gt=1)
        .exists()
    )


def test_activities_of_every_kind_with_open_and_overdue_todos(small_demo: None) -> None:
    assert set(Activity.objects.values_list("kind", flat=True)) == set(ActivityKind.values)
    open_todos = Activity.objects.filter(due_at__isnull=False, done_at=None)
    assert open_todos.filter(due_at__gt=NOW).count() >= 20
    assert open_todos.filter(due_at__lt=NOW).count() >= 5  # overdue
    # Done activities are in the past; to-dos are on open leads (or after a sale).
    assert not Activity.objects.filter(done_at__gt=NOW).exists()
    assert not Activity.objects.filter(due_at=None, occurred_at__gt=NOW).exists()
    assert not open_todos.filter(lead__stage__in=[Stage.LOST, Stage.DISQUALIFIED]).exists()
    # Before a rep had the lead, marketing worked it.
    marketing = User.objects.get(email="marketing@example.com")
    assert Activity.objects.filter(owner=marketing).exists()
    assert (
        set(Activity.objects.exclude(owner=marketing).values_list("owner__email", flat=True))
        <= DEMO_REP_EMAILS
    )


def test_open_leads_have_learned_win_probabilities(small_demo: None) -> None:
    open_leads = Lead.objects.filter(stage__in=OPEN_STAGES)
    assert not open_leads.filter(win_probability=None).exists()
    rules = {line["rule"] for line in open_leads.first().score_breakdown}
    assert "Learned win probability" in rules


def test_running_twice_adds_nothing(small_demo: None) -> None:
    before = pipeline_counts()
    leads = list(Lead.objects.order_by("pk").values())

    out = seed()

    assert "already seeded (leads exist): skipped" in out
    assert pipeline_counts() == before
    assert list(Lead.objects.order_by("pk").values()) == leads


def test_output_says_what_was_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_demo, "PIPELINE_LEADS_PER_REP", (10, 12))

    out = seed()

    assert "Sales pipeline (a year of history):" in out
    assert f"{Lead.objects.count():,} created" in out
    assert f"{Deal.objects.count():,} created" in out


def test_the_demo_is_the_same_on_every_fresh_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_demo, "PIPELINE_LEADS_PER_REP", (15, 20))
    fields = ["contact_name", "company_name", "email", "stage", "score", "created_at", "decided_at"]

    seed()
    first = list(Lead.objects.order_by("created_at", "pk").values_list(*fields))
    first_deals = list(Deal.objects.order_by("close_date", "amount").values_list("amount"))
    for model in PIPELINE_MODELS:
        model.objects.all().delete()
    seed()

    assert list(Lead.objects.order_by("created_at", "pk").values_list(*fields)) == first
    assert list(Deal.objects.order_by("close_date", "amount").values_list("amount")) == first_deals


# --- The benchmark generator, small -----------------------------------------------------


def index_and_key_definitions() -> set[tuple[str, str]]:
    tables = [model._meta.db_table for model in demo.PIPELINE_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = ANY(%s::regclass[]) UNION ALL "
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[])",
            [tables, tables],
        )
        return set(cursor.fetchall())


def seed_benchmark(*, leads: int) -> demo.PipelineResult | None:
    with time_machine.travel(NOW, tick=False):
        return demo.seed_large_pipeline(
            reps=list(User.objects.filter(role=Role.REP)),
            product_lines=list(ProductLine.objects.order_by("name")),
            marketing=User.objects.filter(role=Role.MARKETING).first(),
            today=TODAY,
            leads=leads,
            chunk=500,  # several chunks: the background writer and its hand-over
        )


def test_benchmark_generator_makes_the_benchmark_proportions(
    small_demo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = index_and_key_definitions()
    before = pipeline_counts()
    progress: list[str] = []

    with time_machine.travel(NOW, tick=False):
        result = demo.seed_large_pipeline(
            reps=list(User.objects.filter(role=Role.REP)),
            product_lines=list(ProductLine.objects.order_by("name")),
            marketing=User.objects.filter(role=Role.MARKETING).first(),
            today=TODAY,
            leads=2000,
            chunk=500,
            progress=progress.append,
        )

    assert result is not None
    benchmark = Lead.objects.filter(email__endswith=demo.LARGE_EMAIL_SUFFIX)
    assert benchmark.count() == result.counts["leads"] == 2000
    # Per lead as in the benchmark's million: 0.3 estimates, 0.15 deals, 1 activity,
    # 0.1 customers (a tolerance for the small size).
    estimates = Estimate.objects.filter(lead__in=benchmark).count()
    deals = Deal.objects.filter(lead__in=benchmark).count()
    activities = Activity.objects.filter(lead__in=benchmark).count()
    customers = Customer.objects.filter(email__endswith=demo.LARGE_EMAIL_SUFFIX).count()
    assert 0.25 <= estimates / 2000 <= 0.36
    assert 0.12 <= deals / 2000 <= 0.18
    assert 0.85 <= activities / 2000 <= 1.2
    assert 0.07 <= customers / 2000 <= 0.16
    assert result.counts["estimates"] == estimates and result.counts["deals"] == deals
    # Every rep got some; one "created" event per lead.
    owners = benchmark.exclude(owner=None).values("owner").distinct().count()
    assert owners == User.objects.filter(role=Role.REP).count()
    events = LeadEvent.objects.filter(lead__in=benchmark)
    assert events.count() == 2000 and not events.exclude(kind="created").exists()
    # The rules hold as in the demo; the timeline is only the creation.
    assert_leads_consistent(benchmark)
    assert_sales_consistent(benchmark)
    # Indexes and foreign keys are back, exactly as they were; the sequences moved on.
    assert index_and_key_definitions() == schema
    new_lead = Lead.objects.create(source=LeadSource.OTHER, contact_name="After the seed")
    assert new_lead.pk > benchmark.aggregate(Max("pk"))["pk__max"]
    assert any("2,000 / 2,000 leads" in line and "rows/s" in line for line in progress)
    # The demo's own data is untouched.
    assert Lead.objects.exclude(pk__in=benchmark).exclude(pk=new_lead.pk).count() == before["Lead"]


def test_benchmark_generator_runs_once(small_demo: None) -> None:
    assert seed_benchmark(leads=600) is not None
    counts = pipeline_counts()

    assert seed_benchmark(leads=600) is None

    assert pipeline_counts() == counts


def test_large_scale_command_seeds_the_benchmark_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_demo, "PIPELINE_LEADS_PER_REP", (5, 8))
    monkeypatch.setattr(seed_demo, "LARGE_PIPELINE_LEADS", 1500)

    out = seed(scale="large")

    benchmark = Lead.objects.filter(email__endswith=demo.LARGE_EMAIL_SUFFIX)
    assert benchmark.count() == 1500
    # Spread over the 100 reps of the large organisation.
    assert benchmark.values("owner").exclude(owner=None).distinct().count() >= 95
    assert "Benchmark pipeline (1,500 leads):" in out and "rows/s" in out
    assert "ANALYZE of the pipeline tables" in out
    assert_leads_consistent(benchmark)
    won = benchmark.filter(stage=Stage.WON).aggregate(total=Sum("deals__amount"))["total"]
    assert won is not None and won > 0

    again = seed(scale="large")

    assert "already seeded (benchmark leads exist): skipped" in again
    assert benchmark.count() == 1500
