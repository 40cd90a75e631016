"""Writes of the reminders app: the user's handling of a reminder, and the emails.

Sending is exactly-once in the sense of DESIGN.md ("Background work"), the way
survey emails are sent (``feedback.services``):

- a reminder (or digest) email is *claimed* with a conditional UPDATE
  (``state = 'pending' AND send_after <= now``) before it is sent, and marked
  sent only if the row is still held by that same claim (``claimed_at``);
- the Message-ID is ``<reminder.{id}@{domain}>`` (``<digest.{id}@…>``), the
  same for every attempt, so a resend after a crash is recognisable;
- a worker that dies after claiming leaves the row "claimed": the sweeper
  gives such claims back after REMINDER_CLAIM_TIMEOUT;
- a failed send is given back with its next attempt pushed back (doubling),
  and marked failed after REMINDER_MAX_ATTEMPTS; one bad row never stops the
  others;
- Postgres is the source of truth, the queue only a hint: the dispatcher and
  the sweeper queue a send task for every pending, due row, so a Redis that
  lost its queue loses nothing.

The one window left is "sent by SMTP, then the worker died before the row
said so": the sweeper's resend carries the same Message-ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Model, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import ReminderEmails, User
from reminders import conf
from reminders.models import Digest, EmailState, Reminder, ReminderStatus

logger = logging.getLogger(__name__)

SNOOZE_DAYS = (1, 3, 7)


# --- The user's handling ------------------------------------------------------------------


def _lock_own(reminder: Reminder, user: User) -> Reminder:
    """The reminder locked, if it is the user's own; only the recipient changes it."""
    if reminder.user_id != user.pk:
        raise ValidationError(_("Only the person a reminder is for can change it."))
    return Reminder.objects.select_for_update().get(pk=reminder.pk)


@transaction.atomic
def reminder_done(*, reminder: Reminder, user: User, now: datetime | None = None) -> Reminder:
    """Mark done. Repeating it changes nothing; an unsent email is not sent any more."""
    now = now or timezone.now()
    reminder = _lock_own(reminder, user)
    if reminder.status == ReminderStatus.DONE:
        return reminder
    return _handle(reminder, ReminderStatus.DONE, now)


@transaction.atomic
def reminder_dismiss(*, reminder: Reminder, user: User, now: datetime | None = None) -> Reminder:
    """Dismiss (not needed). Repeating it changes nothing."""
    now = now or timezone.now()
    reminder = _lock_own(reminder, user)
    if reminder.status == ReminderStatus.DISMISSED:
        return reminder
    return _handle(reminder, ReminderStatus.DISMISSED, now)


def _handle(reminder: Reminder, status: str, now: datetime) -> Reminder:
    reminder.status = status
    reminder.handled_at = now
    reminder.snoozed_until = None
    fields = ["status", "handled_at", "snoozed_until"]
    if reminder.email_state == EmailState.PENDING:
        # Handled before its email went: the email has nothing left to say.
        reminder.email_state = EmailState.SKIPPED
        fields.append("email_state")
    reminder.save(update_fields=fields)
    return reminder


@transaction.atomic
def reminder_snooze(
    *, reminder: Reminder, user: User, days: int, today: date, now: datetime | None = None
) -> Reminder:
    """Hide the reminder until ``today + days`` (1, 3 or 7); it comes back open then."""
    now = now or timezone.now()
    if days not in SNOOZE_DAYS:
        raise ValidationError({"days": _("Snooze for 1, 3 or 7 days.")})
    reminder = _lock_own(reminder, user)
    if reminder.status in (ReminderStatus.DONE, ReminderStatus.DISMISSED):
        raise ValidationError(_("This reminder is already handled."))
    reminder.status = ReminderStatus.SNOOZED
    reminder.snoozed_until = today + timedelta(days=days)
    reminder.handled_at = now
    reminder.save(update_fields=["status", "snoozed_until", "handled_at"])
    return reminder


# --- Claims (shared by reminders and digests) -------------------------------------------------


@dataclass(frozen=True)
class EmailQueue:
    """One kind of email row: its model and the name of its state field."""

    model: type[Model]
    state: str
    prefix: str  # of the Message-ID

    def pending(self) -> Q:
        return Q(**{self.state: EmailState.PENDING})

    def claimed(self, pk: int, claimed_at: datetime) -> Q:
        return Q(pk=pk, claimed_at=claimed_at, **{self.state: EmailState.CLAIMED})


REMINDERS = EmailQueue(Reminder, "email_state", "reminder")
DIGESTS = EmailQueue(Digest, "state", "digest")


def message_id(prefix: str, pk: int) -> str:
    """The same Message-ID for every attempt at the same email: a retry is recognisable."""
    return f"<{prefix}.{pk}@{conf.message_id_domain()}>"


def _claim(queue: EmailQueue, pk: int, now: datetime) -> datetime | None:
    """Claim one email if it is due and nobody has it: the claim time, or None."""
    claimed_at = timezone.now()
    claimed = queue.model.objects.filter(queue.pending(), pk=pk, send_after__lte=now).update(
        claimed_at=claimed_at, attempts=F("attempts") + 1, **{queue.state: EmailState.CLAIMED}
    )
    return claimed_at if claimed == 1 else None


def finish_claim(
    queue: EmailQueue, pk: int, claimed_at: datetime, state: str, **fields: object
) -> bool:
    """Move a row out of "claimed", only if it is still held by this claim."""
    return (
        queue.model.objects.filter(queue.claimed(pk, claimed_at)).update(
            **{queue.state: state}, **fields
        )
        == 1
    )


def _record_failure(
    queue: EmailQueue, pk: int, claimed_at: datetime, now: datetime, error: Exception
) -> tuple[str, timedelta | None]:
    """Give the email back with its next attempt later, or mark it failed after the last.

    Returns ("retry", delay) or ("failed", None) — or ("lost", None) when the
    sweeper already gave the claim to someone else.
    """
    text = f"{type(error).__name__}: {error}"[:1000]
    with transaction.atomic():
        row = queue.model.objects.select_for_update().filter(queue.claimed(pk, claimed_at)).first()
        if row is None:
            return "lost", None
        attempts: int = row.attempts  # type: ignore[attr-defined]
        if attempts >= conf.max_attempts():
            setattr(row, queue.state, EmailState.FAILED)
            delay = None
        else:
            delay = conf.retry_delay(attempts)
            setattr(row, queue.state, EmailState.PENDING)
            row.send_after = now + delay  # type: ignore[attr-defined]
            # The task retries itself after ``delay``: the dispatcher need not queue it.
            row.enqueued_at = now  # type: ignore[attr-defined]
        row.last_error = text  # type: ignore[attr-defined]
        row.save(update_fields=[queue.state, "send_after", "enqueued_at", "last_error"])
    logger.warning("%s email %s not sent: %s", queue.prefix, pk, text)
    return ("failed", None) if delay is None else ("retry", delay)


def _patience_deadline(claimed_at: datetime) -> datetime:
    """How long "mark sent" may keep trying: until shortly before the sweeper would
    give the claim back (or the task's soft time limit, if that comes first)."""
    limit = conf.claim_timeout()
    soft_limit = getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", None)
    if soft_limit:
        limit = min(limit, timedelta(seconds=soft_limit))
    return claimed_at + limit - timedelta(seconds=30)


def _mark_sent_patiently(queue: EmailQueue, pk: int, claimed_at: datetime, now: datetime) -> bool:
    """Record "sent", retrying while the database is away.

    The email is already out: giving up here means the sweeper sends it again
    (same Message-ID). So it keeps trying until just before the claim would be
    given back (``_patience_deadline``): a database restart of several minutes
    is ridden out, and a live worker's claim is never handed to another.
    """
    deadline = _patience_deadline(claimed_at)
    pause = 0.5
    while True:
        try:
            return finish_claim(queue, pk, claimed_at, EmailState.SENT, sent_at=now, last_error="")
        except DatabaseError:
            if timezone.now() + timedelta(seconds=pause) >= deadline:
                raise
            logger.warning("%s email %s sent, database away: retrying", queue.prefix, pk)
            if not connection.in_atomic_block:
                connection.close()  # the next query opens a fresh connection
            time.sleep(pause)
            pause = min(pause * 2, 15)


@dataclass(frozen=True)
class SendOutcome:
    """What one send did: sent, skipped, failed, retry, lost, not due; and when to retry."""

    result: str
    retry_in: timedelta | None = None


def send_claimed(
    queue: EmailQueue,
    pk: int,
    now: datetime,
    build: Callable[[int, datetime, datetime], EmailMultiAlternatives | str],
) -> SendOutcome:
    """Claim, build, send, mark sent. ``build`` returns the message or a reason not to send.

    Database errors while claiming propagate (the task retries with backoff);
    any error while building or sending is recorded on the row.
    """
    claimed_at = _claim(queue, pk, now)
    if claimed_at is None:
        return SendOutcome("not due")
    # The connection is opened here, so sending leaves it open and the SMTP QUIT
    # round trip comes after the row says "sent": the window in which a dying
    # worker causes a resend is only the UPDATE after the server's "250".
    mail = get_connection()
    try:
        message = build(pk, claimed_at, now)
        if isinstance(message, str):
            return SendOutcome(message)
        mail.open()
        message.connection = mail
        message.send()
    except Exception as error:  # any failure is recorded on the row
        _close_quietly(mail)
        result, delay = _record_failure(queue, pk, claimed_at, now, error)
        return SendOutcome(result, delay)
    try:
        marked = _mark_sent_patiently(queue, pk, claimed_at, now)
    finally:
        _close_quietly(mail)
    if not marked:
        logger.warning("%s email %s sent, but its claim was taken back", queue.prefix, pk)
        return SendOutcome("sent, claim lost")
    return SendOutcome("sent")


def _close_quietly(mail: BaseEmailBackend) -> None:
    """QUIT the SMTP session; the message is already accepted, so a failure here is noise."""
    try:
        mail.close()
    except Exception:  # nothing left to do about a failing QUIT
        logger.debug("closing the mail connection failed", exc_info=True)


def sender_address() -> str:
    return settings.DEFAULT_FROM_EMAIL


def site_url(name: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name)


def no_email_reason(user: User) -> str:
    """Why a user gets no email now ("" when they do)."""
    if not user.is_active:
        return "the user is inactive"
    if user.reminder_emails == ReminderEmails.NONE:
        return "the user wants no reminder emails"
    return ""


# --- Reminder emails ---------------------------------------------------------------------


def reminder_label(reminder: Reminder) -> str:
    """The kind in the current language; the title is the subject's name (data)."""
    return str(reminder.get_kind_display())


def _build_reminder_email(
    pk: int, claimed_at: datetime, now: datetime
) -> EmailMultiAlternatives | str:
    reminder = Reminder.objects.select_related("user").get(pk=pk)
    user: User = reminder.user
    moot = no_email_reason(user)
    if not moot and user.reminder_emails != ReminderEmails.IMMEDIATE:
        moot = "the user wants the digest only"
    if not moot and reminder.status in (ReminderStatus.DONE, ReminderStatus.DISMISSED):
        moot = "handled before it was sent"
    if moot:
        finish_claim(REMINDERS, pk, claimed_at, EmailState.SKIPPED, last_error=moot)
        return "skipped"
    if not user.email:
        finish_claim(
            REMINDERS, pk, claimed_at, EmailState.FAILED, last_error="the user has no email"
        )
        return "failed"
    return user_email(
        user=user,
        template="reminder",
        message_id=message_id(REMINDERS.prefix, pk),
        context=lambda: {
            "reminder": reminder,
            "user": user,
            "label": reminder_label(reminder),
            "url": site_url("reminders:list"),
        },
    )


def user_email(
    *, user: User, template: str, message_id: str, context: Callable[[], dict[str, Any]]
) -> EmailMultiAlternatives:
    """The HTML + text email ``emails/<template>*`` to ``user``, in their language.

    ``context`` is called inside the user's language, so labels it translates
    come out in that language too.
    """
    with translation.override(user.language):
        values = context()
        subject = render_to_string(f"emails/{template}_subject.txt", values).strip()
        body = render_to_string(f"emails/{template}.txt", values)
        html = render_to_string(f"emails/{template}.html", values)
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=sender_address(),
        to=[str(Address(display_name=user.display_name, addr_spec=user.email))],
        headers={"Message-ID": message_id},
    )
    message.attach_alternative(html, "text/html")
    return message


def reminder_claim(*, reminder_id: int, now: datetime) -> datetime | None:
    """Claim one reminder email if it is due and unclaimed: the claim time, or None."""
    return _claim(REMINDERS, reminder_id, now)


def reminder_email_send(*, reminder_id: int, now: datetime) -> SendOutcome:
    """Claim and send one reminder email; safe to run any number of times at once.

    A second caller finds nothing to claim ("not due"); a sent email is never
    claimed again.
    """
    return send_claimed(REMINDERS, reminder_id, now, _build_reminder_email)


# --- Queueing and the sweeper ---------------------------------------------------------------


def _mark_enqueued(queue: EmailQueue, *, now: datetime, limit: int, only_stale: bool) -> list[int]:
    """Ids of pending, due rows (oldest first), stamped ``enqueued_at = now``.

    ``only_stale``: skip rows queued within the claim timeout (the dispatcher);
    the sweeper takes every pending, due row. SKIP LOCKED: two runs at once
    take different rows.
    """
    due = queue.model.objects.filter(queue.pending(), send_after__lte=now)
    if only_stale:
        due = due.filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - conf.claim_timeout())
        )
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True)
            .order_by("send_after", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            queue.model.objects.filter(pk__in=ids).update(enqueued_at=now)
    return ids


def _enqueue(queue: EmailQueue, ids: list[int]) -> None:
    from reminders import tasks

    task = tasks.send_reminder_email if queue is REMINDERS else tasks.send_digest
    for pk in ids:
        # After commit: the stamp is saved first, and a caller's transaction
        # that rolls back queues nothing. robust: if Redis is away, the rest are
        # still tried; the sweeper queues whatever did not make it.
        transaction.on_commit(lambda pk=pk: task.delay(pk), robust=True)


def reminders_enqueue_due(*, now: datetime, only_stale: bool = True) -> int:
    """Queue a send task for each due reminder email (at most REMINDER_SWEEP_LIMIT); how many.

    Safe to repeat: a task finding its email claimed or sent does nothing.
    """
    ids = _mark_enqueued(REMINDERS, now=now, limit=conf.sweep_limit(), only_stale=only_stale)
    _enqueue(REMINDERS, ids)
    return len(ids)


def digests_enqueue_due(*, now: datetime, only_stale: bool = True) -> int:
    """Queue a send task for each due digest (at most REMINDER_SWEEP_LIMIT); how many."""
    ids = _mark_enqueued(DIGESTS, now=now, limit=conf.sweep_limit(), only_stale=only_stale)
    _enqueue(DIGESTS, ids)
    return len(ids)


def _give_back_stale(queue: EmailQueue, now: datetime) -> int:
    stale = queue.model.objects.filter(
        claimed_at__lt=now - conf.claim_timeout(), **{queue.state: EmailState.CLAIMED}
    )
    given_up = stale.filter(attempts__gte=conf.max_attempts()).update(
        last_error="claim timed out too often", **{queue.state: EmailState.FAILED}
    )
    requeued = stale.update(
        send_after=now,
        enqueued_at=None,
        last_error="claim timed out",
        **{queue.state: EmailState.PENDING},
    )
    if given_up or requeued:
        logger.warning(
            "%s emails: %s claims given back, %s given up", queue.prefix, requeued, given_up
        )
    return requeued


def emails_sweep(*, now: datetime) -> dict[str, int]:
    """Give back stale claims, then queue every pending, due email (oldest first).

    A worker that died after claiming leaves its row claimed: after
    REMINDER_CLAIM_TIMEOUT it is pending again. Queueing every pending row
    (not only the never-queued ones) recovers from a Redis that lost its queue.
    """
    given_back = _give_back_stale(REMINDERS, now) + _give_back_stale(DIGESTS, now)
    return {
        "given_back": given_back,
        "reminders": reminders_enqueue_due(now=now, only_stale=False),
        "digests": digests_enqueue_due(now=now, only_stale=False),
    }
