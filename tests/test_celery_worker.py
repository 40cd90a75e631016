"""A task queued on commit runs on a real Celery worker, through the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from salesperf.celery import app as celery_app
from tests.factories import UserFactory

BASE_DIR = Path(settings.BASE_DIR)


def _test_database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture
def worker_queue(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real worker on a queue of its own, so no other worker can take the test's task."""
    queue = f"test-{uuid.uuid4().hex}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_URL": f"filemail://{mail_dir}",
        "DEBUG": "true",
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed in the finally below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "salesperf", "worker", "--pool=solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    old_eager, old_routes = celery_app.conf.task_always_eager, celery_app.conf.task_routes
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_routes = {"*": {"queue": queue}}
    try:
        yield queue, mail_dir
    finally:
        celery_app.conf.task_always_eager = old_eager
        celery_app.conf.task_routes = old_routes
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def sent_mail(mail_dir: Path, until: Callable[[str], bool], timeout: float = 60) -> str:
    """The text of every email the worker wrote, once `until` holds for it (or at the
    timeout). The file backend creates its file when the connection opens and writes the
    message after, so a file that exists may still be empty (seen once on CI)."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(mail_dir.iterdir()) if mail_dir.exists() else []
        text = "".join(path.read_text() for path in files)
        if until(text) or time.monotonic() >= deadline:
            return text
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_password_reset_email_is_sent_by_a_real_worker(
    worker_queue: tuple[str, Path], tmp_path: Path
) -> None:
    _, mail_dir = worker_queue
    user = UserFactory(email="worker.test@example.com", display_name="Wanda Worker")
    response = Client().post(reverse("password_reset"), {"email": user.email})
    assert response.status_code == 302

    sent = sent_mail(mail_dir, until=lambda text: "To: worker.test@example.com" in text)
    log = (tmp_path / "worker.log").read_text()
    assert "To: worker.test@example.com" in sent, f"no email within 60 s; worker log:\n{log}"
    assert "Hello Wanda Worker" in sent
    assert "/password/reset/" in sent
