"""The lead stage machine, its history and the temperature rules (leads/services.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leads import services
from leads.models import (
    ActivityKind,
    Deal,
    DealStatus,
    EstimateStatus,
    Lead,
    LeadEventKind,
    LeadSource,
    LostReason,
    Stage,
    Temperature,
)
from tests.conftest import Cast
from tests.factories import ProductLineFactory
from tests.factories_leads import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def new_lead(cast: Cast, **kwargs) -> Lead:
    data = {"actor": cast.rep, "source": LeadSource.WEBINAR, "contact_name": "Anna Svensson"}
    return services.lead_create(**{**data, **kwargs, "now": kwargs.get("now", NOW)})


def stages(lead: Lead) -> list[tuple[str, str]]:
    events = lead.events.filter(kind=LeadEventKind.STAGE).order_by("created_at", "pk")
    return [(event.from_value, event.to_value) for event in events]


# --- Temperature ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, Temperature.HOT),
        (30, Temperature.HOT),
        (31, Temperature.WARM),
        (90, Temperature.WARM),
        (91, Temperature.COLD),
        (None, Temperature.COLD),
    ],
)
def test_temperature_from_timeframe(days: int | None, expected: str) -> None:
    timeframe = None if days is None else TODAY + dt.timedelta(days=days)
    assert services.temperature_for(timeframe=timeframe, today=TODAY) == expected


def test_temperature_thresholds_are_settings(settings) -> None:
    settings.LEAD_HOT_DAYS = 10
    assert (
        services.temperature_for(timeframe=TODAY + dt.timedelta(days=20), today=TODAY)
        == Temperature.WARM
    )


# --- Creation -------------------------------------------------------------------


def test_rep_creates_a_lead_they_own_with_history(cast: Cast) -> None:
    lead = new_lead(cast, timeframe=TODAY + dt.timedelta(days=10))
    assert lead.owner == cast.rep and lead.team == cast.team
    assert lead.stage == Stage.SUSPECT and lead.temperature == Temperature.HOT
    kinds = set(lead.events.values_list("kind", flat=True))
    assert {LeadEventKind.CREATED, LeadEventKind.OWNER} <= kinds
    assert lead.created_by == cast.rep


def test_a_lead_needs_someone_to_talk_to(cast: Cast) -> None:
    with pytest.raises(ValidationError, match="at least a name"):
        services.lead_create(actor=cast.rep, source=LeadSource.WEBINAR, now=NOW)
    assert not Lead.objects.exists()


def test_a_lead_cannot_start_closed_or_with_an_unknown_source(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        new_lead(cast, stage=Stage.WON)
    with pytest.raises(ValidationError):
        new_lead(cast, source="carrier pigeon")
    assert not Lead.objects.exists()


def test_a_rep_cannot_create_a_lead_for_another_team(cast: Cast) -> None:
    with pytest.raises(ValidationError, match="your teams"):
        new_lead(cast, owner=cast.other_rep)
    assert not Lead.objects.exists()


# --- The stage machine ------------------------------------------------------------


def test_the_happy_path_is_recorded_step_by_step(cast: Cast) -> None:
    lead = new_lead(cast)
    services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.COLD, now=NOW)
    services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.MQL, now=NOW)
    services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.SQL, now=NOW)
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    assert lead.reached_mql_at == NOW and lead.reached_sql_at == NOW
    assert stages(lead) == [("suspect", "cold"), ("cold", "mql"), ("mql", "sql")]
    event = lead.events.filter(kind=LeadEventKind.STAGE).first()
    assert event.actor == cast.rep


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (Stage.SUSPECT, Stage.MQL),
        (Stage.SUSPECT, Stage.SQL),
        (Stage.COLD, Stage.SQL),
        (Stage.MQL, Stage.HOT),
        (Stage.SQL, Stage.MQL),
        (Stage.LOST, Stage.SQL),
        (Stage.DISQUALIFIED, Stage.HOT),
    ],
)
def test_refused_transitions_say_why_and_change_nothing(cast: Cast, start: str, to: str) -> None:
    lead = new_lead(cast)
    Lead.objects.filter(pk=lead.pk).update(
        stage=start, lost_reason=LostReason.PRICE if start in (Stage.LOST, "disqualified") else ""
    )
    before = lead.events.count()
    with pytest.raises(ValidationError, match="cannot go from"):
        services.lead_move_stage(lead=lead, actor=cast.rep, to=to, now=NOW)
    lead.refresh_from_db()
    assert lead.stage == start
    assert lead.events.count() == before


def test_won_comes_only_from_a_won_deal(cast: Cast) -> None:
    lead = new_lead(cast, stage=Stage.SQL)
    with pytest.raises(ValidationError, match="record the won deal"):
        services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.WON, now=NOW)
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SQL


@pytest.mark.parametrize("to", [Stage.LOST, Stage.DISQUALIFIED])
def test_lost_and_disqualified_need_a_reason_from_the_list(cast: Cast, to: str) -> None:
    lead = new_lead(cast, stage=Stage.SQL)
    for bad in ("", "because"):
        with pytest.raises(ValidationError, match="reason from the list"):
            services.lead_move_stage(lead=lead, actor=cast.rep, to=to, reason=bad, now=NOW)
    services.lead_move_stage(lead=lead, actor=cast.rep, to=to, reason=LostReason.PRICE, now=NOW)
    lead.refresh_from_db()
    assert lead.stage == to and lead.lost_reason == LostReason.PRICE and lead.decided_at == NOW
    assert lead.events.filter(kind=LeadEventKind.STAGE).first().reason == "Price not competitive"


@pytest.mark.parametrize("start", [Stage.SUSPECT, Stage.COLD, Stage.HOT, Stage.MQL, Stage.SQL])
def test_any_open_stage_can_be_disqualified(cast: Cast, start: str) -> None:
    lead = new_lead(cast)
    Lead.objects.filter(pk=lead.pk).update(stage=start)
    services.lead_move_stage(
        lead=lead, actor=cast.rep, to=Stage.DISQUALIFIED, reason=LostReason.NO_BUDGET, now=NOW
    )
    assert Lead.objects.get(pk=lead.pk).stage == Stage.DISQUALIFIED


@pytest.mark.parametrize("back_to", [Stage.SUSPECT, Stage.COLD])
def test_recycling_keeps_history_and_marks_the_source(cast: Cast, back_to: str) -> None:
    lead = new_lead(cast, stage=Stage.SQL)
    services.lead_move_stage(
        lead=lead, actor=cast.rep, to=Stage.LOST, reason=LostReason.COMPETITOR, now=NOW
    )
    later = NOW + dt.timedelta(days=40)
    services.lead_move_stage(lead=lead, actor=cast.rep, to=back_to, now=later)
    lead.refresh_from_db()
    assert lead.stage == back_to
    assert lead.source == LeadSource.RECYCLED
    assert lead.decided_at is None and lead.lost_reason == ""
    assert stages(lead)[-2:] == [("sql", "lost"), ("lost", back_to)]
    assert lead.reached_sql_at == NOW  # the funnel still knows it once reached SQL


def test_moving_to_the_same_stage_is_refused(cast: Cast) -> None:
    lead = new_lead(cast, stage=Stage.MQL)
    with pytest.raises(ValidationError, match="cannot go from"):
        services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.MQL, now=NOW)


# --- Temperature stages and overrides -----------------------------------------------


def test_suspect_to_the_timeframes_temperature_needs_no_reason(cast: Cast) -> None:
    lead = new_lead(cast, timeframe=TODAY + dt.timedelta(days=60))
    services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.WARM, now=NOW)
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature, lead.temperature_overridden) == ("warm", "warm", False)


def test_a_temperature_against_the_timeframe_needs_a_reason(cast: Cast) -> None:
    lead = new_lead(cast, timeframe=TODAY + dt.timedelta(days=200))
    with pytest.raises(ValidationError, match="Say why"):
        services.lead_move_stage(lead=lead, actor=cast.rep, to=Stage.HOT, now=NOW)
    services.lead_move_stage(
        lead=lead, actor=cast.rep, to=Stage.HOT, reason="Budget freed up", now=NOW
    )
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature, lead.temperature_overridden) == ("hot", "hot", True)
    event = lead.events.filter(kind=LeadEventKind.TEMPERATURE).first()
    assert (event.from_value, event.to_value, event.reason) == ("cold", "hot", "Budget freed up")


def test_a_new_timeframe_moves_a_temperature_stage_unless_overridden(cast: Cast) -> None:
    lead = new_lead(cast, timeframe=TODAY + dt.timedelta(days=200), stage=Stage.COLD)
    services.lead_update(lead=lead, actor=cast.rep, timeframe=TODAY + dt.timedelta(days=5), now=NOW)
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature) == ("hot", "hot")
    assert stages(lead)[-1] == ("cold", "hot")

    services.lead_set_temperature(
        lead=lead, actor=cast.rep, temperature=Temperature.WARM, reason="Slow buyer", now=NOW
    )
    services.lead_update(lead=lead, actor=cast.rep, timeframe=TODAY + dt.timedelta(days=2), now=NOW)
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature, lead.temperature_overridden) == ("warm", "warm", True)

    services.lead_set_temperature(lead=lead, actor=cast.rep, temperature=None, now=NOW)
    lead.refresh_from_db()
    assert (lead.stage, lead.temperature, lead.temperature_overridden) == ("hot", "hot", False)


def test_override_without_reason_is_refused(cast: Cast) -> None:
    lead = new_lead(cast, timeframe=TODAY + dt.timedelta(days=5))
    with pytest.raises(ValidationError, match="Say why"):
        services.lead_set_temperature(
            lead=lead, actor=cast.rep, temperature=Temperature.COLD, now=NOW
        )
    assert Lead.objects.get(pk=lead.pk).temperature == Temperature.HOT


# --- Assignment ---------------------------------------------------------------------


def test_manager_reassigns_within_the_team_and_it_is_recorded(cast: Cast) -> None:
    lead = new_lead(cast)
    services.lead_assign(lead=lead, owner=cast.teammate, actor=cast.manager)
    lead.refresh_from_db()
    assert lead.owner == cast.teammate
    event = lead.events.filter(kind=LeadEventKind.OWNER).first()
    assert (event.from_value, event.to_value, event.actor) == ("Alice Rep", "Bob Rep", cast.manager)


def test_manager_cannot_assign_to_another_team_and_rep_cannot_reassign(cast: Cast) -> None:
    lead = new_lead(cast)
    with pytest.raises(ValidationError, match="your teams"):
        services.lead_assign(lead=lead, owner=cast.other_rep, actor=cast.manager)
    with pytest.raises(ValidationError, match="your teams"):
        services.lead_assign(lead=lead, owner=cast.teammate, actor=cast.rep)
    assert Lead.objects.get(pk=lead.pk).owner == cast.rep


def test_nobody_assigns_to_an_inactive_rep_or_to_marketing(cast: Cast) -> None:
    lead = new_lead(cast)
    cast.teammate.is_active = False
    cast.teammate.save(update_fields=["is_active"])
    with pytest.raises(ValidationError, match="inactive"):
        services.lead_assign(lead=lead, owner=cast.teammate, actor=cast.admin)
    with pytest.raises(ValidationError, match="Only sales reps and managers"):
        services.lead_assign(lead=lead, owner=cast.marketing, actor=cast.admin)


def test_marketing_hands_an_mql_to_a_team(cast: Cast) -> None:
    lead = services.lead_create(
        actor=cast.marketing,
        source=LeadSource.WEBINAR,
        contact_name="Luca",
        stage=Stage.MQL,
        now=NOW,
    )
    assert lead.owner is None
    services.lead_hand_to_team(lead=lead, team=cast.team, actor=cast.marketing)
    lead.refresh_from_db()
    assert lead.team == cast.team
    from leads.selectors import leads_for_user

    assert leads_for_user(user=cast.manager).filter(pk=lead.pk).exists()
    assert not leads_for_user(user=cast.other_manager).filter(pk=lead.pk).exists()

    suspect = services.lead_create(
        actor=cast.marketing, source=LeadSource.WEBINAR, contact_name="Early", now=NOW
    )
    with pytest.raises(ValidationError, match="MQL"):
        services.lead_hand_to_team(lead=suspect, team=cast.team, actor=cast.marketing)


# --- Estimates, deals and the lead's outcome ----------------------------------------


def test_accepting_an_estimate_wins_the_deal_and_the_lead(cast: Cast, time_machine) -> None:
    time_machine.move_to(NOW, tick=False)
    customer = CustomerFactory(owner=cast.rep)
    line = ProductLineFactory()
    lead = new_lead(cast, customer=customer, stage=Stage.HOT)
    estimate = services.estimate_create(
        actor=cast.rep,
        customer=customer,
        lead=lead,
        product_line=line,
        amount=Decimal("12000.50"),
        valid_until=TODAY + dt.timedelta(days=30),
    )
    with pytest.raises(ValidationError, match="cannot be accepted"):
        services.estimate_accept(estimate=estimate, actor=cast.rep)
    services.estimate_send(estimate=estimate, actor=cast.rep)
    estimate.refresh_from_db()
    assert estimate.status == EstimateStatus.SENT and estimate.issued_on == TODAY

    deal = services.estimate_accept(estimate=estimate, actor=cast.rep)
    assert deal.status == DealStatus.WON and deal.amount == Decimal("12000.50")
    assert deal.estimate == estimate and deal.owner == cast.rep
    lead.refresh_from_db()
    assert lead.stage == Stage.WON and lead.decided_at == NOW
    # A won deal passes the lead through SQL: the funnel stays true.
    assert stages(lead)[-2:] == [("hot", "sql"), ("sql", "won")]
    assert lead.reached_sql_at == NOW


def test_a_lost_deal_needs_a_reason_and_loses_an_open_lead(cast: Cast, time_machine) -> None:
    time_machine.move_to(NOW, tick=False)
    customer = CustomerFactory(owner=cast.rep)
    lead = new_lead(cast, customer=customer, stage=Stage.SQL)
    common = {
        "actor": cast.rep,
        "customer": customer,
        "product_line": ProductLineFactory(),
        "amount": Decimal("500"),
        "close_date": TODAY,
        "status": DealStatus.LOST,
        "lead": lead,
    }
    with pytest.raises(ValidationError):
        services.deal_record(**common)
    assert not Deal.objects.exists()
    services.deal_record(**common, lost_reason=LostReason.DELIVERY_DELAY)
    lead.refresh_from_db()
    assert lead.stage == Stage.LOST and lead.lost_reason == LostReason.DELIVERY_DELAY


def test_deals_do_not_close_in_the_future(cast: Cast, time_machine) -> None:
    time_machine.move_to(NOW, tick=False)
    with pytest.raises(ValidationError, match="not in the future"):
        services.deal_record(
            actor=cast.rep,
            customer=CustomerFactory(owner=cast.rep),
            product_line=ProductLineFactory(),
            amount=Decimal("1"),
            close_date=TODAY + dt.timedelta(days=1),
            status=DealStatus.WON,
        )


def test_a_deal_keeps_a_copy_of_its_leads_creation_time_whatever_writes_it(cast: Cast) -> None:
    """The dashboards' sales cycle reads ``Deal.lead_created_at``: database triggers keep
    it equal to the lead's ``created_at`` through the service, bulk writes, a change of
    lead, a corrected creation time and a deleted lead."""
    from tests.factories_leads import DealFactory

    customer = CustomerFactory(owner=cast.rep)
    first = new_lead(cast, customer=customer, stage=Stage.SQL)
    second = new_lead(cast, customer=customer)
    Lead.objects.filter(pk=second.pk).update(created_at=NOW - dt.timedelta(days=30))
    second.refresh_from_db()
    recorded = services.deal_record(
        actor=cast.rep,
        customer=customer,
        product_line=ProductLineFactory(),
        amount=Decimal("500"),
        close_date=TODAY,
        status=DealStatus.WON,
        lead=first,
    )
    [bulk] = Deal.objects.bulk_create(
        [
            DealFactory.build(
                customer=customer, lead=second, owner=cast.rep, product_line=ProductLineFactory()
            )
        ]
    )
    without = DealFactory(customer=customer, owner=cast.rep)

    def copy(deal: Deal) -> dt.datetime | None:
        return Deal.objects.values_list("lead_created_at", flat=True).get(pk=deal.pk)

    assert copy(recorded) == first.created_at
    assert copy(bulk) == second.created_at == NOW - dt.timedelta(days=30)
    assert copy(without) is None
    Deal.objects.filter(pk=recorded.pk).update(lead=second)
    assert copy(recorded) == second.created_at
    corrected = NOW - dt.timedelta(days=90)
    Lead.objects.filter(pk=second.pk).update(created_at=corrected)
    assert copy(recorded) == copy(bulk) == corrected
    Deal.objects.filter(pk=bulk.pk).update(lead_created_at=NOW)  # a stray write is undone
    assert copy(bulk) == corrected
    Deal.objects.filter(pk=recorded.pk).update(lead=None)
    assert copy(recorded) is None


def test_an_estimate_keeps_a_copy_of_its_leads_stage_whatever_writes_it(cast: Cast) -> None:
    """The weighted pipeline reads ``Estimate.lead_stage``: database triggers keep it
    equal to the lead's stage through a stage move, set-based updates, a change of
    lead, bulk writes and a deleted lead."""
    from leads.models import Estimate
    from tests.factories_leads import EstimateFactory

    customer = CustomerFactory(owner=cast.rep)
    first = new_lead(cast, customer=customer)
    second = new_lead(cast, customer=customer, stage=Stage.HOT)
    estimate = EstimateFactory(owner=cast.rep, customer=customer, lead=first)
    [bulk] = Estimate.objects.bulk_create(
        [
            EstimateFactory.build(
                owner=cast.rep, customer=customer, lead=second, product_line=ProductLineFactory()
            )
        ]
    )
    alone = EstimateFactory(owner=cast.rep, customer=customer)

    def copy(row: Estimate) -> str:
        return Estimate.objects.values_list("lead_stage", flat=True).get(pk=row.pk)

    assert (copy(estimate), copy(bulk), copy(alone)) == (first.stage, Stage.HOT, "")
    services.lead_move_stage(
        lead=first, actor=cast.rep, to=Stage.WARM, reason="Asked for a demo", now=NOW
    )
    assert copy(estimate) == Stage.WARM
    Lead.objects.filter(pk=second.pk).update(stage=Stage.SQL)
    assert copy(bulk) == Stage.SQL
    Estimate.objects.filter(pk=estimate.pk).update(lead=second)
    assert copy(estimate) == Stage.SQL
    Estimate.objects.filter(pk=alone.pk).update(lead_stage=Stage.WON)  # a stray write is undone
    assert copy(alone) == ""
    Estimate.objects.filter(pk=estimate.pk).update(lead=None)
    assert copy(estimate) == ""


def test_expiry_is_set_based_and_repeat_safe(cast: Cast) -> None:
    from tests.factories_leads import EstimateFactory

    old = EstimateFactory(
        owner=cast.rep,
        status=EstimateStatus.SENT,
        issued_on=TODAY - dt.timedelta(days=40),
        valid_until=TODAY - dt.timedelta(days=1),
    )
    fresh = EstimateFactory(
        owner=cast.rep, status=EstimateStatus.SENT, issued_on=TODAY, valid_until=TODAY
    )
    assert services.estimates_expire_due(today=TODAY) == 1
    assert services.estimates_expire_due(today=TODAY) == 0
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == EstimateStatus.EXPIRED and fresh.status == EstimateStatus.SENT


# --- Activities and last contact ----------------------------------------------------


def test_logging_a_contact_moves_last_contact_forward_only(cast: Cast) -> None:
    lead = new_lead(cast)
    services.activity_log(
        actor=cast.rep, kind=ActivityKind.CALL, subject="Intro", occurred_at=NOW, lead=lead
    )
    services.activity_log(
        actor=cast.rep,
        kind=ActivityKind.CALL,
        subject="Logged late",
        occurred_at=NOW - dt.timedelta(days=3),
        lead=lead,
    )
    services.activity_log(
        actor=cast.rep,
        kind=ActivityKind.NOTE,
        subject="Thought",
        occurred_at=NOW + dt.timedelta(hours=2),
        lead=lead,
    )
    lead.refresh_from_db()
    assert lead.last_contact_at == NOW


def test_a_todo_counts_as_contact_only_when_done(cast: Cast) -> None:
    lead = new_lead(cast)
    todo = services.activity_log(
        actor=cast.rep,
        kind=ActivityKind.FOLLOW_UP,
        subject="Call back",
        occurred_at=NOW,
        due_at=NOW + dt.timedelta(days=2),
        lead=lead,
    )
    assert Lead.objects.get(pk=lead.pk).last_contact_at is None
    done_at = NOW + dt.timedelta(days=1)
    services.activity_complete(activity=todo, actor=cast.rep, now=done_at)
    services.activity_complete(activity=todo, actor=cast.rep, now=done_at + dt.timedelta(days=9))
    assert Lead.objects.get(pk=lead.pk).last_contact_at == done_at


def test_an_activity_must_be_linked(cast: Cast) -> None:
    with pytest.raises(ValidationError, match="Link the activity"):
        services.activity_log(
            actor=cast.rep, kind=ActivityKind.CALL, subject="?", occurred_at=timezone.now()
        )


def test_the_nightly_expiry_task_and_its_schedule(cast: Cast) -> None:
    from leads.tasks import expire_estimates
    from salesperf.celery import app
    from tests.factories_leads import EstimateFactory

    estimate = EstimateFactory(
        owner=cast.rep,
        status=EstimateStatus.SENT,
        issued_on=TODAY - dt.timedelta(days=40),
        valid_until=TODAY - dt.timedelta(days=1),
    )
    assert expire_estimates.delay(TODAY.isoformat()).get() == 1
    estimate.refresh_from_db()
    assert estimate.status == EstimateStatus.EXPIRED
    assert (
        app.conf.beat_schedule["leads-expire-estimates"]["task"] == "leads.tasks.expire_estimates"
    )


def test_temperatures_warm_up_as_the_timeframe_draws_near(cast: Cast) -> None:
    from leads.tasks import refresh_temperatures

    coming = new_lead(cast, timeframe=TODAY + dt.timedelta(days=45), stage=Stage.WARM)
    qualified = new_lead(cast, timeframe=TODAY + dt.timedelta(days=100), stage=Stage.MQL)
    by_hand = new_lead(cast, timeframe=TODAY + dt.timedelta(days=45))
    services.lead_set_temperature(
        lead=by_hand, actor=cast.rep, temperature=Temperature.COLD, reason="Not yet", now=NOW
    )
    later = TODAY + dt.timedelta(days=20)

    assert refresh_temperatures.delay(later.isoformat()).get() == 3
    coming.refresh_from_db()
    qualified.refresh_from_db()
    by_hand.refresh_from_db()
    assert (coming.stage, coming.temperature) == (Stage.HOT, Temperature.HOT)
    assert stages(coming)[-1] == ("warm", "hot")
    assert (qualified.stage, qualified.temperature) == (Stage.MQL, Temperature.WARM)
    assert by_hand.temperature == Temperature.COLD  # set by hand: kept
    # Safe to repeat.
    assert refresh_temperatures.delay(later.isoformat()).get() == 0
