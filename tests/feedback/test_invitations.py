"""Invitations: scheduled when a deal is won (after a delay, throttled per customer),
on request; sent exactly once by the dispatcher as HTML + text from the rep's
company; one reminder; tokens stored only as hashes."""

from __future__ import annotations

import datetime as dt
import inspect
import smtplib
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings

import leads.services
from feedback import services, tasks
from feedback.models import (
    DeliveryKind,
    DeliveryState,
    InvitationReason,
    SurveyDelivery,
    SurveyInvitation,
    SurveyStatus,
    SurveyToken,
)
from leads.models import DealStatus
from tests.conftest import Cast
from tests.factories import ProductLineFactory
from tests.feedback.helpers import NOW, answer, customer_of, send_survey, token_from, won_deal

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


# --- Scheduling ---------------------------------------------------------------------------


def test_a_won_deal_schedules_a_survey_after_the_delay(cast: Cast) -> None:
    deal = won_deal(cast.rep)
    invitation = services.invitation_create_for_won_deal(deal=deal, now=NOW)
    assert invitation is not None
    assert invitation.reason == InvitationReason.DEAL_WON
    assert (invitation.customer, invitation.deal, invitation.rep) == (deal.customer, deal, cast.rep)
    assert invitation.team == cast.team
    assert invitation.send_after == NOW + DAY
    assert invitation.status_at(NOW) == SurveyStatus.SCHEDULED
    # Nothing goes out before the delay has passed…
    assert services.deliveries_dispatch(now=NOW + DAY - dt.timedelta(minutes=1)) == {}
    assert mail.outbox == []
    # …and it goes once it has.
    assert services.deliveries_dispatch(now=NOW + DAY)["sent"] == 1
    assert mail.outbox[0].to == [deal.customer.email]


@override_settings(SURVEY_SEND_DELAY=dt.timedelta(hours=4))
def test_the_delay_is_a_setting(cast: Cast) -> None:
    invitation = services.invitation_create_for_won_deal(deal=won_deal(cast.rep), now=NOW)
    assert invitation is not None and invitation.send_after == NOW + dt.timedelta(hours=4)


def test_a_lost_deal_or_one_closed_long_ago_gets_no_survey(cast: Cast) -> None:
    lost = won_deal(cast.rep, status=DealStatus.LOST, lost_reason="price")
    old = won_deal(cast.rep, close_date=NOW.date() - dt.timedelta(days=90))
    assert services.invitation_create_for_won_deal(deal=lost, now=NOW) is None
    assert services.invitation_create_for_won_deal(deal=old, now=NOW) is None
    assert not SurveyInvitation.objects.exists()


def test_a_customer_surveyed_within_the_throttle_window_is_not_surveyed_again(cast: Cast) -> None:
    customer = customer_of(cast.rep)
    first = services.invitation_create_for_won_deal(deal=won_deal(cast.rep, customer), now=NOW)
    assert first is not None
    # A second deal won while the first survey waits: no second survey.
    assert (
        services.invitation_create_for_won_deal(deal=won_deal(cast.rep, customer), now=NOW) is None
    )
    services.deliveries_dispatch(now=NOW + DAY)
    # 29 days after it was sent: still throttled; 30 days after: surveyed again.
    later = won_deal(cast.rep, customer, close_date=(NOW + 30 * DAY).date())
    assert services.invitation_create_for_won_deal(deal=later, now=NOW + 30 * DAY) is None
    again = services.invitation_create_for_won_deal(deal=later, now=NOW + 31 * DAY)
    assert again is not None
    assert SurveyInvitation.objects.filter(customer=customer).count() == 2


@override_settings(SURVEY_THROTTLE_DAYS=7)
def test_the_throttle_window_is_a_setting(cast: Cast) -> None:
    customer = customer_of(cast.rep)
    send_survey(cast.rep, customer=customer)
    with pytest.raises(ValidationError):
        services.invitation_request(actor=cast.rep, customer=customer, now=NOW + 6 * DAY)
    assert services.invitation_request(actor=cast.rep, customer=customer, now=NOW + 8 * DAY)


def test_a_customer_without_email_is_not_surveyed(cast: Cast) -> None:
    deal = won_deal(cast.rep, customer_of(cast.rep, email=""))
    assert services.invitation_create_for_won_deal(deal=deal, now=NOW) is None
    with pytest.raises(ValidationError, match="no email address"):
        services.invitation_request(actor=cast.rep, customer=deal.customer, now=NOW)


@pytest.mark.skipif(
    "invitation_create_for_won_deal" not in inspect.getsource(leads.services.deal_record),
    reason="deal_record does not call feedback yet (wiring in the feedback report)",
)
def test_recording_a_won_deal_schedules_its_survey(cast: Cast) -> None:
    customer = customer_of(cast.rep)
    with time_machine.travel(NOW, tick=False):
        deal = leads.services.deal_record(
            actor=cast.rep,
            customer=customer,
            product_line=ProductLineFactory(),
            amount=1000,
            close_date=NOW.date(),
            status=DealStatus.WON,
        )
    invitation = SurveyInvitation.objects.get(deal=deal)
    assert invitation.send_after == NOW + DAY


def test_a_survey_on_request_goes_out_right_away(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    deal = won_deal(cast.rep)
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_request(
            actor=cast.manager, customer=deal.customer, deal=deal
        )
    invitation.refresh_from_db()
    assert invitation.reason == InvitationReason.ON_DEMAND
    assert invitation.created_by == cast.manager
    assert invitation.rep == cast.rep  # the deal's owner, not who asked
    assert invitation.sent_at == NOW
    assert len(mail.outbox) == 1
    # The dispatcher finds nothing more to send.
    assert services.deliveries_dispatch(now=NOW + dt.timedelta(minutes=1)) == {}


def test_marketing_cannot_request_a_survey(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        services.invitation_request(actor=cast.marketing, customer=customer_of(cast.rep), now=NOW)


# --- The email ----------------------------------------------------------------------------


def test_the_email_is_html_and_text_from_the_reps_company_with_the_reps_name(cast: Cast) -> None:
    invitation, token = send_survey(cast.rep)
    message = mail.outbox[0]
    assert "Alice Rep" in message.from_email
    assert message.reply_to == [cast.rep.email]
    assert f"/s/{token}/" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f"/s/{token}/" in html
    assert message.extra_headers["Message-ID"] == services.message_id(invitation.pk, "invitation")


def test_the_email_is_in_the_customers_language(cast: Cast) -> None:
    send_survey(cast.rep, customer=customer_of(cast.rep, language="sv"))
    assert "Hur nöjd är du med vår service?" in mail.outbox[0].body


def test_only_the_hash_of_the_token_is_stored(cast: Cast) -> None:
    invitation, token = send_survey(cast.rep)
    assert len(token) >= 43  # token_urlsafe(32): 256 random bits (at least 128 required)
    stored = SurveyToken.objects.get(invitation=invitation)
    assert stored.token_hash == services.token_hash(token)
    assert token not in stored.token_hash
    assert len(stored.token_hash) == 64
    # No column of any survey row holds the token itself.
    for row in (invitation, stored, *invitation.deliveries.all()):
        assert token not in str(vars(row))


def test_two_tokens_are_never_the_same(cast: Cast) -> None:
    tokens = {services.token_new() for _ in range(1000)}
    assert len(tokens) == 1000


# --- Exactly once --------------------------------------------------------------------------


def test_an_email_is_claimed_once(cast: Cast) -> None:
    invitation = services.invitation_create(
        customer=customer_of(cast.rep),
        rep=cast.rep,
        reason=InvitationReason.ON_DEMAND,
        now=NOW,
        send_after=NOW,
    )
    delivery = invitation.deliveries.get()
    assert services.delivery_claim(delivery_id=delivery.pk, now=NOW) is not None
    assert services.delivery_claim(delivery_id=delivery.pk, now=NOW) is None
    assert services.deliveries_claim_due(now=NOW, limit=10) == []


def test_dispatching_twice_sends_once(cast: Cast) -> None:
    send_survey(cast.rep)
    assert services.deliveries_dispatch(now=NOW) == {}
    tasks.dispatch_surveys(at=NOW.isoformat())
    assert len(mail.outbox) == 1


def test_a_claim_left_by_a_dead_worker_is_sent_after_the_timeout_with_the_same_message_id(
    cast: Cast,
) -> None:
    invitation = services.invitation_create(
        customer=customer_of(cast.rep),
        rep=cast.rep,
        reason=InvitationReason.ON_DEMAND,
        now=NOW,
        send_after=NOW,
    )
    with time_machine.travel(NOW, tick=False):
        claimed = services.deliveries_claim_due(now=NOW, limit=10)  # …and the worker dies
    assert len(claimed) == 1
    assert services.deliveries_sweep(now=NOW + dt.timedelta(minutes=9)) == 0
    assert services.deliveries_dispatch(now=NOW + dt.timedelta(minutes=9)) == {}
    assert services.deliveries_sweep(now=NOW + dt.timedelta(minutes=11)) == 1
    assert services.deliveries_dispatch(now=NOW + dt.timedelta(minutes=11))["sent"] == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == services.message_id(
        invitation.pk, "invitation"
    )


def test_a_failing_email_does_not_stop_the_batch_and_is_retried_later(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = customer_of(cast.rep, email="bounce@customer.example")
    good = customer_of(cast.rep)
    for customer in (bad, good):
        services.invitation_create(
            customer=customer, rep=cast.rep, reason="on_demand", now=NOW, send_after=NOW
        )
    real_send = services.EmailMultiAlternatives.send

    def send(message: Any, *args: Any, **kwargs: Any) -> int:
        if "bounce@customer.example" in message.to:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(message, *args, **kwargs)

    monkeypatch.setattr(services.EmailMultiAlternatives, "send", send)
    outcomes = services.deliveries_dispatch(now=NOW)
    assert outcomes == {"sent": 1, "retry": 1}
    assert [m.to for m in mail.outbox] == [[good.email]]
    failed = SurveyDelivery.objects.get(invitation__customer=bad)
    assert failed.state == DeliveryState.SCHEDULED
    assert "connection lost" in failed.last_error
    assert failed.send_after == NOW + dt.timedelta(minutes=5)
    # The next run after the back-off sends it.
    monkeypatch.setattr(services.EmailMultiAlternatives, "send", real_send)
    assert services.deliveries_dispatch(now=NOW + dt.timedelta(minutes=5))["sent"] == 1


@override_settings(SURVEY_MAX_ATTEMPTS=2)
def test_an_email_that_keeps_failing_is_given_up(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    invitation = services.invitation_create(
        customer=customer_of(cast.rep), rep=cast.rep, reason="on_demand", now=NOW, send_after=NOW
    )

    def send(message: Any, *args: Any, **kwargs: Any) -> int:
        raise smtplib.SMTPRecipientsRefused({})

    monkeypatch.setattr(services.EmailMultiAlternatives, "send", send)
    assert services.deliveries_dispatch(now=NOW) == {"retry": 1}
    assert services.deliveries_dispatch(now=NOW + dt.timedelta(hours=1)) == {"failed": 1}
    invitation.refresh_from_db()
    assert invitation.status_at(NOW + DAY) == SurveyStatus.FAILED
    # A survey that could not be sent does not block the next one.
    assert services.invitation_create_for_won_deal(
        deal=won_deal(cast.rep, invitation.customer), now=NOW + DAY
    )


# --- The one reminder ------------------------------------------------------------------------


def test_one_reminder_after_three_days_and_never_a_second(cast: Cast) -> None:
    invitation, first_token = send_survey(cast.rep)
    assert services.deliveries_dispatch(now=NOW + 3 * DAY - dt.timedelta(minutes=1)) == {}
    assert services.deliveries_dispatch(now=NOW + 3 * DAY)["sent"] == 1
    reminder = mail.outbox[-1]
    assert reminder.extra_headers["Message-ID"] == services.message_id(invitation.pk, "reminder")
    assert reminder.extra_headers["In-Reply-To"] == services.message_id(invitation.pk, "invitation")
    invitation.refresh_from_db()
    assert invitation.status_at(NOW + 3 * DAY) == SurveyStatus.REMINDED
    # Weeks of dispatching later: still two emails in all.
    for day in range(4, 29):
        services.deliveries_dispatch(now=NOW + day * DAY)
    assert len(mail.outbox) == 2
    # Both links lead to the same survey, which can be answered once.
    second_token = token_from(reminder)
    assert second_token != first_token
    answer(first_token, now=NOW + 4 * DAY)
    with pytest.raises(services.SurveyUnavailable):
        answer(second_token, now=NOW + 4 * DAY)


@override_settings(SURVEY_REMINDER_AFTER_DAYS=5)
def test_the_reminder_delay_is_a_setting(cast: Cast) -> None:
    send_survey(cast.rep)
    assert services.deliveries_dispatch(now=NOW + 4 * DAY) == {}
    assert services.deliveries_dispatch(now=NOW + 5 * DAY)["sent"] == 1


def test_no_reminder_after_an_answer(cast: Cast) -> None:
    invitation, token = send_survey(cast.rep)
    answer(token, now=NOW + DAY)
    assert services.deliveries_dispatch(now=NOW + 10 * DAY) == {"cancelled": 1}
    assert len(mail.outbox) == 1
    assert invitation.deliveries.get(kind=DeliveryKind.REMINDER).state == DeliveryState.CANCELLED


@override_settings(SURVEY_LINK_VALID_DAYS=2)
def test_no_reminder_after_expiry(cast: Cast) -> None:
    invitation, _token = send_survey(cast.rep)
    outcomes = services.deliveries_dispatch(now=NOW + 3 * DAY)
    assert outcomes == {"cancelled": 1}
    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.status_at(NOW + 3 * DAY) == SurveyStatus.EXPIRED


def test_the_status_follows_the_survey(cast: Cast) -> None:
    deal = won_deal(cast.rep)
    invitation = services.invitation_create_for_won_deal(deal=deal, now=NOW)
    assert invitation is not None
    steps = [
        (NOW, SurveyStatus.SCHEDULED),
        (NOW + DAY, SurveyStatus.SENT),
        (NOW + 4 * DAY, SurveyStatus.REMINDED),
    ]
    for moment, status in steps:
        services.deliveries_dispatch(now=moment)
        invitation.refresh_from_db()
        assert invitation.status_at(moment) == status
    assert invitation.status_at(NOW + 32 * DAY) == SurveyStatus.EXPIRED
    answer(token_from(mail.outbox[-1]), now=NOW + 5 * DAY)
    invitation.refresh_from_db()
    assert invitation.status_at(NOW + 32 * DAY) == SurveyStatus.ANSWERED
