"""Reminder emails through a real Celery worker and the real Redis: each sent once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from reminders.models import EmailState, Reminder
from reminders.services import reminders_enqueue_due
from reminders.tasks import send_reminder_email
from salesperf.celery import app as celery_app
from tests.factories import UserFactory
from tests.reminders.helpers import reminder_for
from tests.test_celery_worker import sent_mail, worker_queue  # noqa: F401 - the fixture

COUNT = 20


def _forget_routes() -> None:
    """Celery caches its router at the first send; the worker fixture changes the routes."""
    celery_app.amqp._rtable = None
    celery_app.amqp.__dict__.pop("router", None)


@pytest.fixture
def reminder_worker(
    worker_queue: tuple[str, Path],  # noqa: F811 - the fixture
) -> Iterator[tuple[str, Path]]:
    """The shared worker fixture, with the routes read afresh before and after: without
    it, whichever test sends first fixes the queue for every later one."""
    _forget_routes()
    yield worker_queue
    _forget_routes()


@pytest.mark.django_db(transaction=True)
def test_queued_twice_sent_once_by_a_real_worker(
    reminder_worker: tuple[str, Path], tmp_path: Path
) -> None:
    _, mail_dir = reminder_worker
    user = UserFactory(email="worker.rep@example.com", display_name="Wanda Rep")
    ids = [reminder_for(user, object_id=index).pk for index in range(COUNT)]

    with transaction.atomic():
        reminders_enqueue_due(now=Reminder.objects.latest("send_after").send_after)
    # And once more, as the sweeper would after losing track: every task twice.
    with transaction.atomic():
        for pk in ids:
            transaction.on_commit(lambda pk=pk: send_reminder_email.delay(pk))

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if Reminder.objects.filter(email_state=EmailState.SENT).count() == COUNT:
            break
        time.sleep(0.3)
    time.sleep(1)  # the duplicate tasks finish (and must send nothing)
    log = (tmp_path / "worker.log").read_text()
    assert Reminder.objects.filter(email_state=EmailState.SENT).count() == COUNT, log

    def message_ids_in(text: str) -> list[str]:
        return re.findall(r"^Message-ID: <reminder\.(\d+)@", text, flags=re.MULTILINE)

    # The file backend creates a file before it writes to it: wait for the text of
    # every email, not only for the rows.
    sent = sent_mail(mail_dir, until=lambda text: len(message_ids_in(text)) >= COUNT, timeout=30)
    message_ids = message_ids_in(sent)
    assert sorted(int(pk) for pk in message_ids) == sorted(ids)
