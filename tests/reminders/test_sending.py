"""Reminder emails go out exactly once: claim, send, mark sent; the sweeper; failures."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from accounts.models import ReminderEmails
from reminders import services, tasks
from reminders.models import EmailState, Reminder, ReminderStatus
from tests.reminders.helpers import reminder_for

pytestmark = pytest.mark.django_db

FLAKY = "tests.reminders.helpers.FlakyBackend"


@override_settings(SITE_URL="https://sales.example.com")
def test_claim_then_send_sends_once_with_the_reminder_message_id(cast):
    reminder = reminder_for(cast.rep, title="Call back Acme")

    first = services.reminder_email_send(reminder_id=reminder.pk, now=timezone.now())
    second = services.reminder_email_send(reminder_id=reminder.pk, now=timezone.now())

    assert (first.result, second.result) == ("sent", "not due")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["Alice Rep <alice@example.com>"]
    assert "Call back Acme" in message.subject
    assert message.extra_headers["Message-ID"] == f"<reminder.{reminder.pk}@sales.example.com>"
    reminder.refresh_from_db()
    assert (reminder.email_state, reminder.attempts) == (EmailState.SENT, 1)
    assert reminder.sent_at is not None


def test_a_second_claimer_gets_nothing(cast):
    reminder = reminder_for(cast.rep)
    now = timezone.now()

    assert services.reminder_claim(reminder_id=reminder.pk, now=now) is not None
    assert services.reminder_claim(reminder_id=reminder.pk, now=now) is None
    assert services.reminder_email_send(reminder_id=reminder.pk, now=now).result == "not due"
    assert mail.outbox == []


def test_an_email_not_yet_due_is_not_claimed(cast):
    reminder = reminder_for(cast.rep, send_after=timezone.now() + dt.timedelta(minutes=5))

    assert services.reminder_claim(reminder_id=reminder.pk, now=timezone.now()) is None


def test_the_task_sends_the_email(cast):
    reminder = reminder_for(cast.rep)

    assert tasks.send_reminder_email.delay(reminder.pk).get() == "sent"
    assert len(mail.outbox) == 1


@override_settings(EMAIL_BACKEND=FLAKY, REMINDER_MAX_ATTEMPTS=2)
def test_an_smtp_error_is_retried_later_then_marked_failed(cast):
    cast.rep.email = "fail@example.com"
    cast.rep.save(update_fields=["email"])
    reminder = reminder_for(cast.rep)
    now = timezone.now()

    outcome = services.reminder_email_send(reminder_id=reminder.pk, now=now)

    assert outcome.result == "retry"
    reminder.refresh_from_db()
    assert reminder.email_state == EmailState.PENDING
    assert reminder.send_after == now + outcome.retry_in
    assert "SMTPRecipientsRefused" in reminder.last_error

    later = reminder.send_after
    assert services.reminder_email_send(reminder_id=reminder.pk, now=later).result == "failed"
    reminder.refresh_from_db()
    assert (reminder.email_state, reminder.attempts) == (EmailState.FAILED, 2)
    assert services.reminder_email_send(reminder_id=reminder.pk, now=later).result == "not due"


@override_settings(EMAIL_BACKEND=FLAKY)
def test_one_bad_row_does_not_stop_the_batch(cast, django_capture_on_commit_callbacks):
    cast.teammate.email = "fail@example.com"
    cast.teammate.save(update_fields=["email"])
    bad = reminder_for(cast.teammate, object_id=1)
    good = reminder_for(cast.rep, object_id=2)
    also_good = reminder_for(cast.other_rep, object_id=3)

    with django_capture_on_commit_callbacks(execute=True):
        queued = tasks.dispatch_reminders()

    assert queued == 3
    assert sorted(message.to[0] for message in mail.outbox) == [
        "Alice Rep <alice@example.com>",
        "Charlie Rep <charlie@example.com>",
    ]
    states = dict(Reminder.objects.values_list("pk", "email_state"))
    assert states == {
        bad.pk: EmailState.PENDING,  # to be retried after its back-off
        good.pk: EmailState.SENT,
        also_good.pk: EmailState.SENT,
    }


def test_a_user_without_email_fails_that_row_only(cast, django_capture_on_commit_callbacks):
    cast.teammate.email = ""
    cast.teammate.save(update_fields=["email"])
    bad = reminder_for(cast.teammate, object_id=1)
    reminder_for(cast.rep, object_id=2)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_reminders()

    assert len(mail.outbox) == 1
    bad.refresh_from_db()
    assert (bad.email_state, bad.last_error) == (EmailState.FAILED, "the user has no email")


def test_the_dispatcher_does_not_queue_the_same_email_every_minute(cast):
    reminder_for(cast.rep)
    now = timezone.now()

    assert services.reminders_enqueue_due(now=now) == 1
    assert services.reminders_enqueue_due(now=now + dt.timedelta(minutes=1)) == 0
    # The queue was lost (nothing claimed it by the claim timeout): queued again.
    assert services.reminders_enqueue_due(now=now + dt.timedelta(minutes=11)) == 1


def test_the_sweeper_gives_back_stale_claims_and_requeues(cast, django_capture_on_commit_callbacks):
    reminder = reminder_for(cast.rep)
    claimed_at = services.reminder_claim(reminder_id=reminder.pk, now=timezone.now())
    assert claimed_at is not None
    # The worker died here. Before the timeout, the claim is left alone:
    with (
        time_machine.travel(claimed_at + dt.timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        early = tasks.sweep_reminders()
    assert early["given_back"] == 0
    assert mail.outbox == []

    with (
        time_machine.travel(claimed_at + dt.timedelta(minutes=11), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        late = tasks.sweep_reminders()

    assert (late["given_back"], late["reminders"]) == (1, 1)
    assert len(mail.outbox) == 1
    reminder.refresh_from_db()
    assert (reminder.email_state, reminder.attempts) == (EmailState.SENT, 2)
    # The dead worker's late "sent" changes nothing: its claim is gone.
    assert not services.finish_claim(
        services.REMINDERS, reminder.pk, claimed_at, EmailState.SENT, sent_at=claimed_at
    )


def test_the_sweeper_requeues_every_pending_email_even_if_queued_before(cast):
    """A Redis that lost its queue: the rows still say what is due."""
    reminder_for(cast.rep)
    now = timezone.now()
    services.reminders_enqueue_due(now=now)

    assert services.emails_sweep(now=now)["reminders"] == 1


@override_settings(REMINDER_MAX_ATTEMPTS=1)
def test_the_sweeper_gives_up_a_claim_that_timed_out_too_often(cast):
    reminder = reminder_for(cast.rep)
    claimed_at = services.reminder_claim(reminder_id=reminder.pk, now=timezone.now())

    services.emails_sweep(now=claimed_at + dt.timedelta(minutes=11))

    reminder.refresh_from_db()
    assert reminder.email_state == EmailState.FAILED


@pytest.mark.parametrize(
    ("preference", "status", "reason"),
    [
        (ReminderEmails.DIGEST, ReminderStatus.OPEN, "the user wants the digest only"),
        (ReminderEmails.NONE, ReminderStatus.OPEN, "the user wants no reminder emails"),
        (ReminderEmails.IMMEDIATE, ReminderStatus.DONE, "handled before it was sent"),
    ],
)
def test_no_email_when_it_is_no_longer_wanted(cast, preference, status, reason):
    reminder = reminder_for(cast.rep, status=status)
    cast.rep.reminder_emails = preference
    cast.rep.save(update_fields=["reminder_emails"])

    assert services.reminder_email_send(reminder_id=reminder.pk, now=timezone.now()).result == (
        "skipped"
    )
    assert mail.outbox == []
    reminder.refresh_from_db()
    assert (reminder.email_state, reminder.last_error) == (EmailState.SKIPPED, reason)


def test_a_database_hiccup_after_sending_is_ridden_out(cast, monkeypatch):
    """The email is out; recording it fails once (PostgreSQL restarting): it is retried,
    not left claimed for the sweeper to send again."""
    reminder = reminder_for(cast.rep)
    real_finish = services.finish_claim
    calls = []

    def flaky_finish(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(services, "finish_claim", flaky_finish)
    monkeypatch.setattr(services.time, "sleep", lambda seconds: None)

    outcome = services.reminder_email_send(reminder_id=reminder.pk, now=timezone.now())

    assert outcome.result == "sent"
    assert len(mail.outbox) == 1
    reminder.refresh_from_db()
    assert reminder.email_state == EmailState.SENT


def test_a_long_database_outage_is_waited_out_until_just_before_the_claim_expires(
    cast, monkeypatch
):
    """Giving up early hands the claim to the sweeper, which sends again: "mark sent"
    keeps trying until 30 s before the claim (or the task's soft limit) runs out."""
    reminder = reminder_for(cast.rep)
    clock = {"now": timezone.now()}
    real_now = services.timezone.now

    def fake_now():
        return clock["now"]

    def always_down(*args, **kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(services, "finish_claim", always_down)
    monkeypatch.setattr(services.timezone, "now", fake_now)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock["now"] += dt.timedelta(seconds=seconds)

    monkeypatch.setattr(services.time, "sleep", sleep)
    claimed_at = real_now()
    with pytest.raises(OperationalError):
        services._mark_sent_patiently(services.REMINDERS, reminder.pk, claimed_at, claimed_at)
    waited = dt.timedelta(seconds=sum(slept))
    # Soft time limit 5 min < claim timeout 10 min: about 4.5 minutes of patience.
    assert dt.timedelta(minutes=4) < waited < dt.timedelta(minutes=5)


class OrderRecordingBackend:
    """An SMTP stand-in that records whether the row was marked sent before QUIT."""

    state_at_close: list[str] = []

    def __init__(self, **kwargs):
        self.opened = False

    def open(self):
        if self.opened:
            return False
        self.opened = True
        return True

    def send_messages(self, messages):
        mail.outbox.extend(messages)
        return len(messages)

    def close(self):
        pk = int(mail.outbox[-1].extra_headers["Message-ID"].split(".")[1].split("@")[0])
        self.state_at_close.append(Reminder.objects.get(pk=pk).email_state)


@override_settings(EMAIL_BACKEND="tests.reminders.test_sending.OrderRecordingBackend")
def test_the_smtp_session_is_closed_only_after_the_row_says_sent(cast):
    """QUIT after "mark sent": a worker killed during QUIT causes no resend."""
    OrderRecordingBackend.state_at_close = []
    reminder = reminder_for(cast.rep)
    assert services.reminder_email_send(reminder_id=reminder.pk, now=timezone.now()).result == (
        "sent"
    )
    assert OrderRecordingBackend.state_at_close == [EmailState.SENT]


# The dispatcher: a savepoint, the due rows (locked, SKIP LOCKED), their
# "queued" stamp, the savepoint's release; then one task per row (no query).
DISPATCH_QUERIES = 4


@pytest.mark.parametrize("count", [2, 3])
def test_dispatch_query_count_does_not_grow(cast, django_assert_num_queries, count: int):
    for index in range(count):
        reminder_for(cast.rep, object_id=index)

    with django_assert_num_queries(DISPATCH_QUERIES):
        assert services.reminders_enqueue_due(now=timezone.now()) == count
