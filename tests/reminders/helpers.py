"""Builders for the reminder tests: reminder rows in any state, for anyone."""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends import locmem
from django.utils import timezone

from accounts.models import User
from reminders.models import EmailState, Reminder, ReminderKind


def reminder_for(user: User, **fields: Any) -> Reminder:
    """A pending, due reminder (an overdue to-do by default) for ``user``."""
    values: dict[str, Any] = {
        "kind": ReminderKind.ACTIVITY_OVERDUE,
        "object_id": Reminder.objects.count() + 1000,
        "due_on": timezone.localdate(),
        "title": "Call back Acme",
        "email_state": EmailState.PENDING,
        "send_after": timezone.now() - dt.timedelta(minutes=1),
    }
    values.update(fields)
    return Reminder.objects.create(user=user, **values)


class FlakyBackend(locmem.EmailBackend):
    """The test outbox, except that addresses with "fail" in them raise an SMTP error."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        for message in messages:
            if any("fail" in address for address in message.to):
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"no such user")})
        return super().send_messages(messages)
