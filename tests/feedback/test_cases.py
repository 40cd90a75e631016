"""Follow-up cases: which answers open one, opening by hand, the workflow with its
recorded history, deadlines in working days, overdue flags, the rep's email."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings

from feedback import services
from feedback.models import CaseEvent, CaseSource, CaseStatus, FollowUpCase
from feedback.selectors import case_alerts_for_user
from tests.conftest import Cast
from tests.factories_leads import CustomerFactory
from tests.feedback.helpers import NOW, answer, customer_of, send_survey, won_deal

pytestmark = pytest.mark.django_db
ZONE = zoneinfo.ZoneInfo("Europe/Stockholm")


@pytest.fixture(autouse=True)
def _stockholm(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Stockholm"


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZONE)


# --- Which answers open a case ---------------------------------------------------------------


@pytest.mark.parametrize(
    "csat, nps, comment, concern, opens",
    [
        (5, 10, "", False, False),
        (3, 7, "", False, False),  # neutral, passive: no case
        (2, 8, "", False, True),  # CSAT 2
        (1, 10, "", False, True),
        (3, 6, "", False, True),  # NPS 6: a detractor
        (5, 0, "", False, True),
        (4, 7, "", False, False),
        (5, 9, "The installer was rude and the delivery was late.", True, True),
        (5, 9, "Thank you, everything arrived on time.", False, False),
        (5, 9, "I will order again later.", False, False),  # "later" is not "late"
    ],
)
def test_an_answer_opens_a_case_when_it_is_poor_or_voices_a_concern(
    cast: Cast, csat: int, nps: int, comment: str, concern: bool, opens: bool
) -> None:
    _invitation, token = send_survey(cast.rep)
    stored = answer(token, csat=csat, nps=nps, free_text=comment)
    assert stored.has_concern == concern
    assert FollowUpCase.objects.filter(answer=stored).exists() == opens


@pytest.mark.parametrize(
    "language, comment",
    [
        ("sv", "Leveransen var försenad och jag är besviken."),
        ("pt-br", "Tive um problema com a entrega."),
        ("it", "Il prodotto è arrivato rotto."),
        ("ru", "Доставка задержалась, я недоволен."),
    ],
)
def test_a_concern_is_found_in_each_language(cast: Cast, language: str, comment: str) -> None:
    _invitation, token = send_survey(cast.rep, customer=customer_of(cast.rep, language=language))
    stored = answer(token, csat=5, nps=10, free_text=comment)
    assert stored.has_concern
    case = FollowUpCase.objects.get(answer=stored)
    assert "concern" in case.summary


def test_a_case_from_an_answer_belongs_to_the_rep_and_names_why(cast: Cast) -> None:
    deal = won_deal(cast.rep)
    _invitation, token = send_survey(cast.rep, deal=deal)
    stored = answer(token, csat=2, nps=4, free_text="Too expensive for what we got.")
    case = FollowUpCase.objects.get()
    assert (case.rep, case.team, case.customer, case.deal, case.answer) == (
        cast.rep,
        cast.team,
        deal.customer,
        deal,
        stored,
    )
    assert case.source == CaseSource.SURVEY and case.status == CaseStatus.OPEN
    assert "CSAT 2/5" in case.summary and "NPS 4/10" in case.summary
    assert case.opened_by is None
    assert list(case.events.values_list("from_status", "to_status")) == [("", "open")]


def test_the_rep_is_emailed_once_with_the_manager_in_copy(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    _invitation, token = send_survey(cast.rep)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer(token, csat=1, nps=2, free_text="Nobody called back.")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.rep.email]
    assert message.cc == [cast.manager.email]
    assert "Nobody called back." in message.body
    case = FollowUpCase.objects.get()
    assert case.notified_at is not None
    # Running the task again (a retry, a duplicate) sends nothing more.
    from feedback.tasks import notify_case_opened

    assert notify_case_opened(case_id=case.pk) is False
    assert len(mail.outbox) == 1


# --- By hand ----------------------------------------------------------------------------------


def test_a_manager_opens_a_case_by_hand_for_the_customers_rep(cast: Cast) -> None:
    customer = customer_of(cast.rep)
    case = services.case_open(
        actor=cast.manager,
        customer=customer,
        summary="  Called: the invoice was wrong  ",
        description="Wants a credit note.",
        now=NOW,
    )
    assert (case.rep, case.team, case.opened_by, case.source) == (
        cast.rep,
        cast.team,
        cast.manager,
        CaseSource.MANUAL,
    )
    assert case.summary == "Called: the invoice was wrong"
    assert case.events.get().actor == cast.manager


def test_a_case_about_a_deal_goes_to_the_deals_owner(cast: Cast) -> None:
    customer = customer_of(cast.rep)
    deal = won_deal(cast.teammate, customer)
    case = services.case_open(actor=cast.manager, customer=customer, deal=deal, summary="Late")
    assert case.rep == cast.teammate and case.deal == deal


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"summary": "   "}, "what the case is about"),
        ({"summary": "x", "customer_owner": None}, "no owner"),
        ({"summary": "x", "actor": "marketing"}, "Only sales"),
    ],
)
def test_a_case_that_cannot_be_opened_saves_nothing(
    cast: Cast, kwargs: dict[str, Any], message: str
) -> None:
    owner = kwargs.pop("customer_owner", cast.rep)
    actor = cast.marketing if kwargs.pop("actor", None) == "marketing" else cast.rep
    customer = customer_of(owner) if owner else CustomerFactory(owner=None)
    with pytest.raises(ValidationError, match=message):
        services.case_open(actor=actor, customer=customer, **kwargs)
    assert not FollowUpCase.objects.exists()


# --- Workflow -----------------------------------------------------------------------------------


def manual_case(cast: Cast, now: dt.datetime = NOW) -> FollowUpCase:
    return services.case_open(
        actor=cast.rep, customer=customer_of(cast.rep), summary="Complaint by phone", now=now
    )


def test_open_in_progress_resolved_with_every_change_recorded(cast: Cast) -> None:
    case = manual_case(cast)
    later = NOW + dt.timedelta(hours=5)
    services.case_change_status(case=case, actor=cast.rep, to_status="in_progress", now=later)
    done = NOW + dt.timedelta(hours=26)
    case = services.case_change_status(
        case=case, actor=cast.manager, to_status="resolved", note="Credit note sent.", now=done
    )
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution_note == "Credit note sent." and case.resolved_at == done
    events = list(
        CaseEvent.objects.filter(case=case).values_list(
            "from_status", "to_status", "actor", "created_at", "note"
        )
    )
    assert events == [
        ("", "open", cast.rep.pk, NOW, ""),
        ("open", "in_progress", cast.rep.pk, later, ""),
        ("in_progress", "resolved", cast.manager.pk, done, "Credit note sent."),
    ]


def test_resolving_needs_a_note_and_closing_needs_a_reason(cast: Cast) -> None:
    case = manual_case(cast)
    with pytest.raises(ValidationError, match="how the case was resolved"):
        services.case_change_status(case=case, actor=cast.rep, to_status="resolved", note=" ")
    with pytest.raises(ValidationError, match="why the case is closed"):
        services.case_change_status(case=case, actor=cast.rep, to_status="closed")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and case.events.count() == 1
    case = services.case_change_status(
        case=case, actor=cast.rep, to_status="closed", note="Customer withdrew the complaint."
    )
    assert case.status == CaseStatus.CLOSED
    assert case.close_reason == "Customer withdrew the complaint."


def test_a_finished_case_cannot_change_and_a_repeat_records_nothing(cast: Cast) -> None:
    case = manual_case(cast)
    services.case_change_status(case=case, actor=cast.rep, to_status="in_progress")
    services.case_change_status(case=case, actor=cast.rep, to_status="in_progress")  # double click
    assert case.events.count() == 2
    with pytest.raises(ValidationError, match="cannot become open"):
        services.case_change_status(case=case, actor=cast.rep, to_status="open")
    services.case_change_status(case=case, actor=cast.rep, to_status="resolved", note="Done")
    for status in ("open", "in_progress", "closed"):
        with pytest.raises(ValidationError):
            services.case_change_status(case=case, actor=cast.rep, to_status=status, note="x")
    assert FollowUpCase.objects.get().status == CaseStatus.RESOLVED


def test_the_database_refuses_a_resolved_case_without_a_note(cast: Cast) -> None:
    from django.db import IntegrityError

    case = manual_case(cast)
    with pytest.raises(IntegrityError):
        FollowUpCase.objects.filter(pk=case.pk).update(status=CaseStatus.RESOLVED, resolved_at=NOW)


# --- Deadlines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opened, due",
    [
        (local(2025, 3, 10, 10, 0), local(2025, 3, 12, 10, 0)),  # Monday → Wednesday
        (local(2025, 3, 13, 16, 30), local(2025, 3, 17, 16, 30)),  # Thursday → Monday
        (local(2025, 3, 14, 15, 0), local(2025, 3, 18, 15, 0)),  # Friday → Tuesday
        (local(2025, 3, 15, 11, 0), local(2025, 3, 18, 11, 0)),  # Saturday → Tuesday
        (local(2025, 3, 16, 23, 0), local(2025, 3, 18, 23, 0)),  # Sunday → Tuesday
        # Over the change to summer time (Sunday 30 March): the clock time is kept.
        (local(2025, 3, 28, 9, 0), local(2025, 4, 1, 9, 0)),
    ],
)
def test_the_deadline_is_two_working_days_later(opened: dt.datetime, due: dt.datetime) -> None:
    assert services.case_deadline(opened) == due


def test_a_summer_time_deadline_is_an_hour_less_in_utc() -> None:
    due = services.case_deadline(local(2025, 3, 28, 9, 0))
    assert due.astimezone(dt.UTC) == dt.datetime(2025, 4, 1, 7, 0, tzinfo=dt.UTC)


@override_settings(COMPANY_HOLIDAYS=["2025-04-18", "2025-04-21"])  # Good Friday, Easter Monday
def test_holidays_are_not_working_days() -> None:
    assert services.case_deadline(local(2025, 4, 17, 10, 0)) == local(2025, 4, 23, 10, 0)


@override_settings(CASE_DEADLINE_WORKING_DAYS=5)
def test_the_number_of_working_days_is_a_setting() -> None:
    assert services.case_deadline(local(2025, 3, 10, 10, 0)) == local(2025, 3, 17, 10, 0)


def test_a_case_from_a_survey_gets_the_deadline(cast: Cast) -> None:
    opened = local(2025, 3, 14, 15, 0)  # a Friday afternoon
    _invitation, token = send_survey(cast.rep, now=opened)
    answer(token, csat=1, nps=1, now=opened)
    assert FollowUpCase.objects.get().deadline == local(2025, 3, 18, 15, 0)


def test_overdue_cases_are_counted_for_the_rep_and_their_manager(cast: Cast) -> None:
    opened = local(2025, 3, 10, 10, 0)
    late = manual_case(cast, now=opened)
    on_time = manual_case(cast, now=local(2025, 3, 12, 10, 0))
    done = manual_case(cast, now=opened)
    services.case_change_status(case=done, actor=cast.rep, to_status="resolved", note="ok")
    now = local(2025, 3, 12, 10, 1)
    assert late.is_overdue_at(now) and not on_time.is_overdue_at(now)
    assert not FollowUpCase.objects.get(pk=done.pk).is_overdue_at(now)
    for user in (cast.rep, cast.manager, cast.admin):
        assert case_alerts_for_user(user=user, now=now) == {"open": 2, "overdue": 1}
    for user in (cast.other_rep, cast.other_manager, cast.marketing, cast.teammate):
        assert case_alerts_for_user(user=user, now=now) == {"open": 0, "overdue": 0}
    with time_machine.travel(now, tick=False):
        assert late.is_overdue
