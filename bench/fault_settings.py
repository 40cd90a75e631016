"""Settings of the reminders fault test (``bench/fault_reminders.py``): the project's own,
with what the run needs on top.

Read by the harness and by the Celery workers it starts
(``DJANGO_SETTINGS_MODULE=bench.fault_settings``). Environment:

- ``FAULT_EARLY_ACK=1``: the control run. Tasks are acknowledged when a worker
  takes them (``acks_late`` off) and not given back when the worker dies
  (``reject_on_worker_lost`` off); the harness runs no sweeper. Set both
  globally and through task annotations, which win over a task decorator's own
  ``acks_late=True``.
- ``FAULT_CLAIM_TIMEOUT`` (seconds, 60): the sweeper gives back claims older
  than this. Production waits 10 minutes; a minute keeps the run short. The
  sender's patience while the database is away follows it (the claim timeout
  less 30 s, ``reminders.services._patience_deadline``), as in production.
"""

from __future__ import annotations

import os
from datetime import timedelta

from salesperf.settings import *  # noqa: F403

EARLY_ACK = os.environ.get("FAULT_EARLY_ACK") == "1"

if EARLY_ACK:
    CELERY_TASK_ACKS_LATE = False
    CELERY_TASK_REJECT_ON_WORKER_LOST = False
    CELERY_TASK_ANNOTATIONS = {"*": {"acks_late": False, "reject_on_worker_lost": False}}

REMINDER_CLAIM_TIMEOUT = timedelta(seconds=int(os.environ.get("FAULT_CLAIM_TIMEOUT", "60")))
# One sweep may queue every reminder of the run.
REMINDER_SWEEP_LIMIT = 10_000
# A sink that stops answering must not hold a worker forever.
EMAIL_TIMEOUT = 20
